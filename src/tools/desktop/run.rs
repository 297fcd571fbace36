//! Running the desktop script (`desktop.sh`) in a session through the relay's exec path (as
//! the user's command of an exec job, its `KD_*` inputs as the job's environment) and
//! reading what it prints: `SCREEN`, `CURSOR`, `WIN`, `FOCUS` records and an optional `SHOT`
//! header followed by the image bytes. A `KDERR` line on stderr becomes an error that tells
//! the operator the fix (the Debian package to add, the display to configure).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::mcp::CallContext;
use crate::relay::Purpose;
use crate::relay::frame::ExecReport;
use crate::relay::wrapper::{CommandJob, Job};
use crate::tools::ToolDeps;
use crate::tools::access::{SessionRef, find_session, require_running};
use crate::tools::support::ToolError;
use crate::tools::transfer::{RELAY_GRACE, RoundTrip, round_trip};

use super::image::{ImageSize, image_size};

/// The script: constant text; inputs travel in `KD_*` environment variables.
const SCRIPT: &str = include_str!("desktop.sh");

/// Most bytes the script may print (a 4096-pixel PNG screenshot fits).
const MAX_STDOUT: usize = 48 * 1024 * 1024;

/// Seconds the script may run (the longest wait/hold plus a capture).
const SCRIPT_TIMEOUT_S: u64 = 60;

/// What one run of the script printed, parsed.
#[derive(Debug, Default)]
pub struct Printed {
    /// `SCREEN W H SW SH`: the real and the scaled screen size.
    pub screen: Option<Screen>,
    /// `CURSOR sx sy rx ry`.
    pub cursor: Option<Cursor>,
    /// `WIN\tid\tx\ty\tw\th\tclass\ttitle`, real coordinates.
    pub windows: Vec<RawWindow>,
    /// `FOCUS id`.
    pub focus: Option<u64>,
    pub shot: Option<Shot>,
}

/// Real and scaled screen sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub real: ImageSize,
    pub scaled: ImageSize,
}

/// The pointer, in scaled and real coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub x: u32,
    pub y: u32,
    pub real_x: u32,
    pub real_y: u32,
}

/// One window as listed in the session (real coordinates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWindow {
    pub id: u64,
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
    pub class: String,
    pub title: String,
}

/// A capture: sizes and the encoded image.
#[derive(Debug, Clone)]
pub struct Shot {
    pub screen: Screen,
    pub bytes: Bytes,
}

/// Run the script in the session named by `kasm_id` with the `KD_*` inputs in `env`.
pub async fn run(
    deps: &Arc<ToolDeps>,
    ctx: &CallContext,
    session: &SessionRef,
    mut env: BTreeMap<String, String>,
    what: &str,
) -> Result<Printed, ToolError> {
    env.insert("KD_DISPLAY".into(), deps.desktop.display.clone());
    env.insert(
        "KD_MAX".into(),
        deps.desktop.max_screenshot_side.to_string(),
    );
    env.insert(
        "KD_FMT".into(),
        deps.desktop.format.magick_name().to_string(),
    );
    env.insert("KD_SETTLE_MS".into(), deps.desktop.settle_ms.to_string());
    let job = CommandJob {
        command: SCRIPT.to_string(),
        cwd: None,
        timeout_s: SCRIPT_TIMEOUT_S,
        cap: MAX_STDOUT + 1,
        env,
        cancel_tag: None,
    };
    let frame = round_trip(
        deps,
        ctx,
        session,
        RoundTrip {
            job: Job::Exec(job),
            purpose: Purpose::ExecResult,
            cap: 2 * (MAX_STDOUT + 1) + 256,
            download: None,
            user: None,
            wait: Duration::from_secs(SCRIPT_TIMEOUT_S) + RELAY_GRACE,
            what,
        },
    )
    .await?;
    let report = ExecReport::parse(&frame)?;
    outcome(&report, session, &deps.desktop.display, what)
}

/// The running session `kasm_id` names, for a desktop tool.
pub async fn session(
    deps: &Arc<ToolDeps>,
    ctx: &CallContext,
    kasm_id: &crate::kasm::KasmId,
) -> Result<SessionRef, ToolError> {
    let session = find_session(deps, ctx, kasm_id).await?;
    require_running(&session)?;
    Ok(session)
}

/// The script's result, or the error its `KDERR` line (or exit status) stands for.
fn outcome(
    report: &ExecReport,
    session: &SessionRef,
    display: &str,
    what: &str,
) -> Result<Printed, ToolError> {
    if report.timed_out {
        return Err(ToolError::new(format!(
            "{what} did not finish within {SCRIPT_TIMEOUT_S} s in session {}",
            session.kasm_id
        )));
    }
    if report.exit_code != 0 {
        let stderr = String::from_utf8_lossy(&report.stderr);
        let line = stderr
            .lines()
            .find_map(|l| l.strip_prefix("KDERR "))
            .unwrap_or_default();
        let (code, detail) = line.split_once(' ').unwrap_or((line, ""));
        return Err(script_error(
            code,
            detail.trim(),
            session,
            display,
            what,
            &stderr,
        ));
    }
    parse_printed(&report.stdout).map_err(|e| {
        ToolError::new(format!(
            "{what}: the session's answer could not be read ({e})"
        ))
    })
}

fn script_error(
    code: &str,
    detail: &str,
    session: &SessionRef,
    display: &str,
    what: &str,
    stderr: &str,
) -> ToolError {
    let id = &session.kasm_id;
    let message = match code {
        "no_display" => format!(
            "this session has no display: nothing answers on DISPLAY={display} in session {id}, so {what} cannot run. Kasm desktop images serve their desktop on :1; if this image uses another display, set desktop.display in the server's configuration"
        ),
        "missing" => {
            let (program, package) = detail.split_once(' ').unwrap_or((detail, detail));
            format!(
                "{what} needs the program `{program}` inside session {id}, which the image lacks: add the Debian package `{package}` to the image (apt-get install -y {package}; see docs/DESKTOP.md for a Dockerfile)"
            )
        }
        "out_of_range" => {
            let n: Vec<&str> = detail.split(' ').collect();
            match n.as_slice() {
                [x, y, w, h] => format!(
                    "coordinate ({x}, {y}) is outside the screenshot space, which is {w}×{h}: x must be below {w} and y below {h} (coordinates are in the scaled screenshot's pixels)"
                ),
                _ => format!("a coordinate is outside the screenshot space ({detail})"),
            }
        }
        "no_window" => format!(
            "no window with id {detail} exists in session {id}: list windows with desktop_windows first"
        ),
        "failed" => format!("{what} failed in session {id}: {detail}"),
        _ => format!(
            "{what} failed in session {id}: {}",
            stderr.trim().chars().take(400).collect::<String>()
        ),
    };
    ToolError::new(message)
}

/// Parse the records; the `SHOT` header, when present, is followed by exactly its bytes.
pub fn parse_printed(stdout: &[u8]) -> Result<Printed, String> {
    let mut printed = Printed::default();
    let mut rest = stdout;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a record without a line end")?;
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        let line = std::str::from_utf8(line).map_err(|_| "a record is not UTF-8")?;
        let mut words = line.split(' ');
        match words.next().unwrap_or_default() {
            "SCREEN" => printed.screen = Some(screen(&mut words)?),
            "CURSOR" => {
                let [x, y, real_x, real_y] = numbers::<4>(&mut words)?;
                printed.cursor = Some(Cursor {
                    x,
                    y,
                    real_x,
                    real_y,
                });
            }
            "FOCUS" => printed.focus = line.get(6..).and_then(|s| s.trim().parse().ok()),
            "SHOT" => {
                let screen = screen(&mut words)?;
                let [len] = numbers::<1>(&mut words)?;
                let len = usize::try_from(len).map_err(|_| "length")?;
                if rest.len() != len {
                    return Err(format!(
                        "the image should be {len} bytes but {} arrived",
                        rest.len()
                    ));
                }
                let bytes = Bytes::copy_from_slice(rest);
                let size = image_size(&bytes).ok_or("the image is neither PNG nor JPEG")?;
                if size != screen.scaled {
                    return Err(format!(
                        "the image is {}×{}, not the expected {}×{}",
                        size.width, size.height, screen.scaled.width, screen.scaled.height
                    ));
                }
                printed.shot = Some(Shot { screen, bytes });
                rest = &[];
            }
            _ if line.starts_with("WIN\t") => printed.windows.push(window(line)?),
            other => return Err(format!("unexpected record {other:?}")),
        }
    }
    Ok(printed)
}

fn numbers<'a, const N: usize>(
    words: &mut impl Iterator<Item = &'a str>,
) -> Result<[u32; N], String> {
    let mut out = [0u32; N];
    for slot in &mut out {
        *slot = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or("a number is missing")?;
    }
    Ok(out)
}

fn screen<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<Screen, String> {
    let [w, h, sw, sh] = numbers::<4>(words)?;
    Ok(Screen {
        real: ImageSize {
            width: w,
            height: h,
        },
        scaled: ImageSize {
            width: sw,
            height: sh,
        },
    })
}

fn window(line: &str) -> Result<RawWindow, String> {
    let fields: Vec<&str> = line.splitn(8, '\t').collect();
    let [_, id, x, y, w, h, class, title] = fields.as_slice() else {
        return Err("a window record has too few fields".into());
    };
    let bad = |what: &str| format!("window {what} is not a number");
    Ok(RawWindow {
        id: id.parse().map_err(|_| bad("id"))?,
        x: x.parse().map_err(|_| bad("x"))?,
        y: y.parse().map_err(|_| bad("y"))?,
        width: w.parse().map_err(|_| bad("width"))?,
        height: h.parse().map_err(|_| bad("height"))?,
        class: (*class).to_string(),
        title: title.trim_end().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_parses_with_sh() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn records_and_a_screenshot_parse() {
        let png = super::super::image::tests::png_header(4, 3);
        let mut out = b"CURSOR 1 2 3 4\nSCREEN 8 6 4 3\nWIN\t7\t-1\t2\t30\t40\txterm.XTerm\ta\ttitle \nFOCUS 7\n".to_vec();
        out.extend_from_slice(format!("SHOT 8 6 4 3 {}\n", png.len()).as_bytes());
        out.extend_from_slice(&png);
        let p = parse_printed(&out).unwrap();
        assert_eq!(p.cursor.unwrap().real_y, 4);
        assert_eq!(p.screen.unwrap().scaled.width, 4);
        assert_eq!(p.windows[0].title, "a\ttitle");
        assert_eq!(p.windows[0].x, -1);
        assert_eq!(p.focus, Some(7));
        assert_eq!(p.shot.unwrap().bytes.len(), png.len());
    }

    #[test]
    fn a_short_or_wrong_sized_image_is_refused() {
        let png = super::super::image::tests::png_header(4, 3);
        let mut out = format!("SHOT 8 6 4 3 {}\n", png.len() + 1).into_bytes();
        out.extend_from_slice(&png);
        assert!(parse_printed(&out).is_err());
        let mut out = format!("SHOT 8 6 5 3 {}\n", png.len()).into_bytes();
        out.extend_from_slice(&png);
        assert!(
            parse_printed(&out)
                .unwrap_err()
                .contains("not the expected")
        );
    }
}
