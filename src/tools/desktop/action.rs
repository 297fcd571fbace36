//! `desktop_action`: the computer-use action vocabulary (mouse, keyboard, scroll, wait,
//! cursor position) carried out with `xdotool` on the session's display. Coordinates are
//! pixels of the scaled screenshot and are mapped back to the real display in the session.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{TypedTextRecord, record_typed_text, text_digest};
use crate::config::desktop::MAX_SIDE_LIMIT;
use crate::kasm::KasmId;
use crate::mcp::{CallContext, Content, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler};

use super::keys::{KeyCombos, TypedText};
use super::{run, shot};

const NAME: &str = "desktop_action";
/// Longest `duration` of `wait` and `hold_key`, in seconds.
const MAX_DURATION_S: f64 = 10.0;
const MAX_SCROLL: u32 = 30;

/// The action vocabulary (as computer-use models know it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    MouseMove,
    LeftClick,
    RightClick,
    MiddleClick,
    DoubleClick,
    TripleClick,
    LeftClickDrag,
    LeftMouseDown,
    LeftMouseUp,
    Scroll,
    Type,
    Key,
    HoldKey,
    Wait,
    CursorPosition,
}

/// Which way `scroll` turns the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ScrollDirection {
    Up,
    Down,
    Left,
    Right,
}

/// Arguments of `desktop_action`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    kasm_id: KasmId,
    /// What to do. mouse_move needs coordinate; left_click, right_click, middle_click,
    /// double_click, triple_click, left_mouse_down, left_mouse_up and scroll act at coordinate
    /// when given, else where the pointer is; left_click_drag drags from start_coordinate to
    /// coordinate; scroll needs scroll_direction (scroll_amount clicks, default 3); type types
    /// text (any Unicode); key presses text as xdotool key syntax (e.g. "ctrl+l", "Return",
    /// "ctrl+shift+t"); hold_key holds text's keys for duration seconds; wait waits duration
    /// seconds; cursor_position only reports the pointer. Every action reports the pointer.
    action: ActionName,
    /// [x, y] in pixels of the scaled screenshot (as desktop_screenshot returns it).
    #[serde(default)]
    coordinate: Option<[u32; 2]>,
    /// [x, y] where left_click_drag starts, in screenshot pixels.
    #[serde(default)]
    start_coordinate: Option<[u32; 2]>,
    /// For type: the text to type. For key and hold_key: key names in xdotool syntax, several
    /// combinations separated by spaces.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    #[schemars(with = "ScrollDirection")]
    scroll_direction: Option<ScrollDirection>,
    /// Wheel clicks for scroll (default 3).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_SCROLL))]
    scroll_amount: Option<u32>,
    /// Seconds, for wait and hold_key.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    duration: Option<f64>,
    /// Also return a fresh screenshot, taken after the server's settle delay.
    #[serde(default)]
    screenshot: bool,
}

/// A pointer position.
#[derive(Debug, Serialize, JsonSchema)]
struct Position {
    x: u32,
    y: u32,
}

/// The screenshot space and the real display behind it.
#[derive(Debug, Serialize, JsonSchema)]
struct ScreenSize {
    /// Width of the screenshot space (coordinates are below it).
    width: u32,
    height: u32,
    real_width: u32,
    real_height: u32,
}

/// Result of `desktop_action`.
#[derive(Debug, Serialize, JsonSchema)]
struct ActionResult {
    kasm_id: KasmId,
    action: ActionName,
    /// The pointer after the action, in screenshot pixels.
    cursor: Position,
    /// The same position on the real display.
    cursor_real: Position,
    screen: ScreenSize,
    /// Whether a screenshot follows as image content.
    screenshot: bool,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(NAME, Role::Operator)
        .title("Act on a session's desktop")
        .description("Operate the session's desktop like a person at it: move, click, double/triple-click, drag and scroll the mouse, type text, press keys and key combinations (xdotool syntax), hold keys, wait, or read the pointer position. Coordinates are pixels of the scaled image desktop_screenshot returns; they are mapped back to the real display. Set screenshot: true to get a fresh screenshot after a short settle delay in the same call. Typed text is not logged: the audit log records its length and a keyed digest only. Needs xdotool in the image and a relay; one exec in the session per call.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<ActionResult>())
        .annotations(ToolAnnotations::writes().destructive().open_world())
        .build();
    FnTool::shared(spec, deps, handler!(act))
}

/// The `KD_*` inputs of one action, and the text to audit when it types.
#[derive(Debug)]
struct Planned {
    env: BTreeMap<String, String>,
    typed: Option<TypedText>,
}

fn point(name: &str, p: [u32; 2]) -> Result<[u32; 2], ToolError> {
    if p.iter().any(|&v| v >= MAX_SIDE_LIMIT) {
        return Err(ToolError::new(format!(
            "{name} [{}, {}] is outside any screenshot (coordinates are below {MAX_SIDE_LIMIT})",
            p[0], p[1]
        )));
    }
    Ok(p)
}

fn duration_ms(args: &Args, action: &str) -> Result<u64, ToolError> {
    let seconds = args.duration.ok_or_else(|| {
        ToolError::new(format!(
            "{action} needs duration (seconds, 0 to {MAX_DURATION_S})"
        ))
    })?;
    if !seconds.is_finite() || !(0.0..=MAX_DURATION_S).contains(&seconds) {
        return Err(ToolError::new(format!(
            "duration must be between 0 and {MAX_DURATION_S} seconds"
        )));
    }
    // In range 0..=10_000 after the check above, so the conversion is exact enough.
    Ok((seconds * 1000.0).round() as u64)
}

fn plan(args: &Args) -> Result<Planned, ToolError> {
    use ActionName as A;
    let action = args.action;
    let name = serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let takes_coordinate = !matches!(
        action,
        A::Type | A::Key | A::HoldKey | A::Wait | A::CursorPosition
    );
    let takes_text = matches!(action, A::Type | A::Key | A::HoldKey);
    let takes_duration = matches!(action, A::HoldKey | A::Wait);
    let takes_scroll = action == A::Scroll;
    let refuse = |field: &str| ToolError::new(format!("{field} does not apply to action {name}"));
    if args.coordinate.is_some() && !takes_coordinate {
        return Err(refuse("coordinate"));
    }
    if args.start_coordinate.is_some() && action != A::LeftClickDrag {
        return Err(refuse("start_coordinate"));
    }
    if args.text.is_some() && !takes_text {
        return Err(refuse("text"));
    }
    if args.duration.is_some() && !takes_duration {
        return Err(refuse("duration"));
    }
    if (args.scroll_direction.is_some() || args.scroll_amount.is_some()) && !takes_scroll {
        return Err(refuse("scroll_direction/scroll_amount"));
    }
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    if let Some(p) = args.coordinate {
        let [x, y] = point("coordinate", p)?;
        set("KD_X", x.to_string());
        set("KD_Y", y.to_string());
    }
    let text = || {
        args.text
            .clone()
            .ok_or_else(|| ToolError::new(format!("action {name} needs text")))
    };
    let mut typed = None;
    let click = |button: u8, repeat: u8| [("KD_BUTTON", button), ("KD_REPEAT", repeat)];
    let op = match action {
        A::MouseMove => {
            if args.coordinate.is_none() {
                return Err(ToolError::new("mouse_move needs coordinate [x, y]"));
            }
            "mousemove"
        }
        A::LeftClick | A::RightClick | A::MiddleClick | A::DoubleClick | A::TripleClick => {
            let pairs = match action {
                A::RightClick => click(3, 1),
                A::MiddleClick => click(2, 1),
                A::DoubleClick => click(1, 2),
                A::TripleClick => click(1, 3),
                _ => click(1, 1),
            };
            for (k, v) in pairs {
                set(k, v.to_string());
            }
            "click"
        }
        A::LeftClickDrag => {
            let (Some(start), Some(_)) = (args.start_coordinate, args.coordinate) else {
                return Err(ToolError::new(
                    "left_click_drag needs start_coordinate and coordinate",
                ));
            };
            let [x0, y0] = point("start_coordinate", start)?;
            set("KD_X0", x0.to_string());
            set("KD_Y0", y0.to_string());
            "drag"
        }
        A::LeftMouseDown => "down",
        A::LeftMouseUp => "up",
        A::Scroll => {
            let direction = args.scroll_direction.ok_or_else(|| {
                ToolError::new("scroll needs scroll_direction: up, down, left or right")
            })?;
            let amount = args.scroll_amount.unwrap_or(3);
            if !(1..=MAX_SCROLL).contains(&amount) {
                return Err(ToolError::new(format!(
                    "scroll_amount must be between 1 and {MAX_SCROLL}"
                )));
            }
            let button = match direction {
                ScrollDirection::Up => 4,
                ScrollDirection::Down => 5,
                ScrollDirection::Left => 6,
                ScrollDirection::Right => 7,
            };
            set("KD_BUTTON", button.to_string());
            set("KD_REPEAT", amount.to_string());
            "scroll"
        }
        A::Type => {
            let text = TypedText::parse(text()?)?;
            set("KD_TEXT", text.as_str().to_string());
            typed = Some(text);
            "type"
        }
        A::Key => {
            set("KD_KEYS", KeyCombos::parse(&text()?)?.joined());
            "key"
        }
        A::HoldKey => {
            set("KD_KEYS", KeyCombos::parse(&text()?)?.joined());
            set("KD_MS", duration_ms(args, "hold_key")?.to_string());
            "hold"
        }
        A::Wait => {
            set("KD_MS", duration_ms(args, "wait")?.to_string());
            "wait"
        }
        A::CursorPosition => "cursor",
    };
    set("KD_OP", op.to_string());
    if args.screenshot {
        set("KD_SHOT", "1".to_string());
    }
    Ok(Planned { env, typed })
}

async fn act(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let planned = plan(&args)?;
    let session = run::session(&deps, &ctx, &args.kasm_id).await?;
    if let Some(text) = &planned.typed {
        record_typed_text(&TypedTextRecord {
            principal: &ctx.principal.name,
            tool: NAME,
            kasm_id: session.kasm_id.as_str(),
            chars: text.as_str().chars().count(),
            bytes: text.as_str().len(),
            text_hmac_sha256: text_digest(text.as_str()),
        });
    }
    let printed = run::run(&deps, &ctx, &session, planned.env, "the desktop action").await?;
    let (Some(cursor), Some(screen)) = (printed.cursor, printed.screen) else {
        return Err(ToolError::new(
            "the session did not report the pointer position after the action",
        ));
    };
    let result = ActionResult {
        kasm_id: session.kasm_id.clone(),
        action: args.action,
        cursor: Position {
            x: cursor.x,
            y: cursor.y,
        },
        cursor_real: Position {
            x: cursor.real_x,
            y: cursor.real_y,
        },
        screen: ScreenSize {
            width: screen.scaled.width,
            height: screen.scaled.height,
            real_width: screen.real.width,
            real_height: screen.real.height,
        },
        screenshot: printed.shot.is_some(),
    };
    let value = serde_json::to_value(&result)
        .map_err(|e| ToolError::new(format!("the result could not be encoded: {e}")))?;
    let mut output = ToolOutput::structured(value);
    if args.screenshot {
        let shot = printed
            .shot
            .ok_or_else(|| ToolError::new("the session sent no screenshot back"))?;
        let content: [Content; 2] = shot::content(&session.kasm_id, &shot, deps.desktop.format);
        output.content.extend(content);
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const K: &str = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";

    fn planned(v: Value) -> Result<Planned, ToolError> {
        let mut v = v;
        v["kasm_id"] = json!(K);
        let args: Args = parse_args(NAME, v.as_object().cloned().unwrap())?;
        plan(&args)
    }

    #[test]
    fn actions_become_script_inputs() {
        let p = planned(json!({"action": "double_click", "coordinate": [10, 20]})).unwrap();
        assert_eq!(p.env["KD_OP"], "click");
        assert_eq!(
            (p.env["KD_BUTTON"].as_str(), p.env["KD_REPEAT"].as_str()),
            ("1", "2")
        );
        assert_eq!(
            (p.env["KD_X"].as_str(), p.env["KD_Y"].as_str()),
            ("10", "20")
        );
        let p =
            planned(json!({"action": "scroll", "scroll_direction": "down", "scroll_amount": 5}))
                .unwrap();
        assert_eq!(
            (p.env["KD_BUTTON"].as_str(), p.env["KD_REPEAT"].as_str()),
            ("5", "5")
        );
        let p = planned(json!({"action": "hold_key", "text": "shift", "duration": 0.25})).unwrap();
        assert_eq!(
            (p.env["KD_KEYS"].as_str(), p.env["KD_MS"].as_str()),
            ("shift", "250")
        );
        let p =
            planned(json!({"action": "type", "text": "pw $(id) é", "screenshot": true})).unwrap();
        assert_eq!(p.env["KD_TEXT"], "pw $(id) é");
        assert_eq!(p.env["KD_SHOT"], "1");
        assert!(p.typed.is_some());
        let p = planned(
            json!({"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [3, 4]}),
        )
        .unwrap();
        assert_eq!(p.env["KD_X0"], "1");
    }

    #[test]
    fn missing_or_misplaced_fields_and_bad_values_are_refused() {
        for (args, expected) in [
            (json!({"action": "mouse_move"}), "needs coordinate"),
            (json!({"action": "type"}), "needs text"),
            (
                json!({"action": "left_click", "text": "x"}),
                "text does not apply",
            ),
            (
                json!({"action": "key", "text": "ctrl+;"}),
                "xdotool key syntax",
            ),
            (
                json!({"action": "wait", "duration": 11}),
                "between 0 and 10",
            ),
            (json!({"action": "wait"}), "needs duration"),
            (json!({"action": "scroll"}), "scroll_direction"),
            (
                json!({"action": "left_click", "coordinate": [5000, 1]}),
                "outside any screenshot",
            ),
            (
                json!({"action": "left_click_drag", "coordinate": [1, 1]}),
                "start_coordinate",
            ),
        ] {
            let err = planned(args.clone()).unwrap_err().0;
            assert!(err.contains(expected), "{args}: {err}");
        }
        let err = planned(json!({"action": "fly"})).unwrap_err().0;
        assert!(err.contains("desktop_action"), "{err}");
        let err = planned(json!({"action": "left_click", "coordinate": [-1, 2]}))
            .unwrap_err()
            .0;
        assert!(err.contains("invalid"), "{err}");
    }
}
