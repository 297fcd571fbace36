//! The POSIX `sh` wrapper scripts sent through `exec_command_kasm`, one per purpose.
//!
//! The script text is constant: everything that varies (the user's command, paths, limits,
//! the ticket URLs) travels in `exec_config.environment` as `KMCP_*` variables, so no user
//! text is ever pasted into shell code. The `sh -c` argument is quoted with shlex, so Kasm's
//! shell-style split of `exec_config.cmd` yields exactly `["sh", "-c", script]`.

use std::collections::BTreeMap;

use crate::kasm::ExecConfig;

/// Helpers shared by every script: a temp dir, POST with curl → wget → python3, GET likewise,
/// failure records, and the allowed-roots check on `realpath`-resolved paths.
const PRELUDE: &str = r#"kmcp_url=$KMCP_URL
unset KMCP_URL
d=$(mktemp -d 2>/dev/null || mktemp -d -t kmcp.XXXXXX) || exit 1
trap 'rm -rf "$d"' EXIT
kmcp_post() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$kmcp_url" >/dev/null && return 0
  fi
  if command -v wget >/dev/null 2>&1; then
    wget -q -O /dev/null --header='Content-Type: application/octet-stream' --post-file="$1" "$kmcp_url" && return 0
  fi
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, urllib.request
data = open(sys.argv[1], "rb").read()
req = urllib.request.Request(sys.argv[2], data=data, method="POST", headers={"Content-Type": "application/octet-stream"})
urllib.request.urlopen(req, timeout=120).read()' "$1" "$kmcp_url" && return 0
  fi
  return 1
}
kmcp_fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o "$2" "$1" && return 0
  fi
  if command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" && return 0
  fi
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, shutil, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$1" "$2" && return 0
  fi
  return 1
}
kmcp_fail() {
  printf '%s err %s %s\n' "$KMCP_KIND" "$1" "$(printf '%s' "${2:-}" | tr '\n' ' ')" > "$d/post"
  kmcp_post "$d/post"
  exit 0
}
kmcp_inside() {
  while IFS= read -r root; do
    [ -n "$root" ] || continue
    r=$(realpath "$root" 2>/dev/null) || r=$root
    [ "$r" = / ] && return 0
    case "$1" in "$r"|"$r"/*) return 0 ;; esac
  done <<KMCP_ROOTS_END
$KMCP_ROOTS
KMCP_ROOTS_END
  return 1
}
"#;

/// Runs `$KMCP_CMD` with `sh -c` in `$KMCP_CWD` under `$KMCP_TIMEOUT` seconds, keeps the first
/// `$KMCP_CAP` bytes of stdout and stderr each (draining the rest so the command is not
/// killed by SIGPIPE and the disk use stays bounded), and POSTs an `EXEC` record.
const EXEC_BODY: &str = r#"kmcp_cmd=$KMCP_CMD
unset KMCP_CMD
mkfifo "$d/o" "$d/e" || exit 1
{ head -c "$KMCP_CAP" > "$d/out"; cat > /dev/null; : > "$d/out.done"; } < "$d/o" &
r1=$!
{ head -c "$KMCP_CAP" > "$d/err"; cat > /dev/null; : > "$d/err.done"; } < "$d/e" &
r2=$!
t0=$(date +%s%N 2>/dev/null)
s0=$(date +%s)
rc=0
if [ -n "${KMCP_CWD:-}" ] && ! cd "$KMCP_CWD" 2>/dev/null; then
  printf 'kasm-mcp: cannot change to working_dir %s\n' "$KMCP_CWD" > "$d/e"
  : > "$d/o"
  rc=1
elif timeout -k 2 5 true >/dev/null 2>&1; then
  timeout -k 2 "$KMCP_TIMEOUT" sh -c "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null
  rc=$?
elif command -v timeout >/dev/null 2>&1; then
  timeout "$KMCP_TIMEOUT" sh -c "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null
  rc=$?
else
  sh -c "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null &
  pid=$!
  (
    i=0
    while [ "$i" -lt "$KMCP_TIMEOUT" ]; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || exit 0
      i=$((i + 1))
    done
    : > "$d/timedout"
    kill -TERM "$pid" 2>/dev/null
    sleep 2
    kill -KILL "$pid" 2>/dev/null
  ) > /dev/null 2>&1 < /dev/null &
  wait "$pid" 2>/dev/null
  rc=$?
fi
t1=$(date +%s%N 2>/dev/null)
s1=$(date +%s)
to=0
if [ -e "$d/timedout" ]; then
  to=1
elif [ $((s1 - s0)) -ge "$KMCP_TIMEOUT" ]; then
  case "$rc" in 124|137|143) to=1 ;; esac
fi
i=0
while [ ! -e "$d/out.done" ] || [ ! -e "$d/err.done" ]; do
  if [ "$i" -ge 300 ]; then
    kill "$r1" "$r2" 2>/dev/null
    break
  fi
  sleep 0.01 2>/dev/null || sleep 1
  i=$((i + 1))
done
dur=-
case "$t0$t1" in
  *[!0-9]*|'') ;;
  *) dur=$(( (t1 - t0) / 1000000 )) ;;
esac
touch "$d/out" "$d/err"
{
  printf 'EXEC %s %s %s %s %s\n' "$rc" "$to" "$dur" $(wc -c < "$d/out") $(wc -c < "$d/err")
  cat "$d/out" "$d/err"
} > "$d/post"
kmcp_post "$d/post"
"#;

/// Uploads the file `$KMCP_PATH` (at most `$KMCP_MAX` bytes) after checking its resolved path.
const READ_BODY: &str = r#"real=$(realpath "$KMCP_PATH" 2>/dev/null) || kmcp_fail not_found
[ -e "$real" ] || kmcp_fail not_found
kmcp_inside "$real" || kmcp_fail outside_roots "resolves to $real"
[ -d "$real" ] && kmcp_fail is_directory
[ -f "$real" ] || kmcp_fail not_a_file
[ -r "$real" ] || kmcp_fail permission_denied
size=$(stat -c %s "$real" 2>/dev/null) || size=$(wc -c < "$real") || kmcp_fail read_failed
[ "$size" -le "$KMCP_MAX" ] || kmcp_fail too_large "$size"
{
  printf 'READ ok %s\n' "$size"
  head -c "$KMCP_MAX" "$real"
} > "$d/post" || kmcp_fail read_failed
kmcp_post "$d/post"
"#;

/// Downloads `$KMCP_SIZE` bytes from `$KMCP_GET_URL` into a temp file next to `$KMCP_PATH`,
/// sets the mode, renames it into place and reports the sha256.
const WRITE_BODY: &str = r#"path=$KMCP_PATH
dir=${path%/*}
[ -n "$dir" ] || dir=/
name=${path##*/}
[ -n "$name" ] || kmcp_fail is_directory
a=$dir
while [ ! -e "$a" ]; do
  a=${a%/*}
  [ -n "$a" ] || a=/
done
ra=$(realpath "$a" 2>/dev/null) || kmcp_fail resolve_failed
kmcp_inside "$ra" || kmcp_fail outside_roots "resolves to $ra"
if [ ! -d "$dir" ]; then
  [ "$KMCP_PARENTS" = 1 ] || kmcp_fail parent_missing
  mkdir -p "$dir" 2>/dev/null || kmcp_fail mkdir_failed
fi
rd=$(realpath "$dir" 2>/dev/null) || kmcp_fail resolve_failed
[ -d "$rd" ] || kmcp_fail parent_missing
kmcp_inside "$rd" || kmcp_fail outside_roots "resolves to $rd"
final="$rd/$name"
[ -d "$final" ] && kmcp_fail is_directory
tmp=$(mktemp "$rd/.kmcp-write.XXXXXX" 2>/dev/null) || kmcp_fail permission_denied
kmcp_fetch "$KMCP_GET_URL" "$tmp" || { rm -f "$tmp"; kmcp_fail download_failed; }
got=$(wc -c < "$tmp")
[ "$got" -eq "$KMCP_SIZE" ] || { rm -f "$tmp"; kmcp_fail size_mismatch "got $got"; }
if [ -n "${KMCP_MODE:-}" ]; then
  mode=$KMCP_MODE
elif [ -e "$final" ]; then
  mode=$(stat -c %a "$final" 2>/dev/null) || mode=644
else
  mode=644
fi
chmod "$mode" "$tmp" 2>/dev/null || { rm -f "$tmp"; kmcp_fail chmod_failed; }
mv -f "$tmp" "$final" 2>/dev/null || { rm -f "$tmp"; kmcp_fail rename_failed; }
sum=-
if command -v sha256sum >/dev/null 2>&1; then
  sum=$(sha256sum < "$final" | cut -d ' ' -f 1)
fi
printf 'WRITE ok %s\n' "$sum" > "$d/post"
kmcp_post "$d/post"
"#;

/// Lists `$KMCP_PATH` (at most `$KMCP_MAX` entries) as NUL-terminated `type\tsize\tname`.
const LIST_BODY: &str = r#"real=$(realpath "$KMCP_PATH" 2>/dev/null) || kmcp_fail not_found
[ -e "$real" ] || kmcp_fail not_found
kmcp_inside "$real" || kmcp_fail outside_roots "resolves to $real"
[ -d "$real" ] || kmcp_fail not_a_directory
[ -r "$real" ] || kmcp_fail permission_denied
[ "$real" = / ] && real=
n=0
trunc=0
: > "$d/list"
for f in "$real"/* "$real"/.[!.]* "$real"/..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ "$n" -ge "$KMCP_MAX" ]; then
    trunc=1
    break
  fi
  if [ -L "$f" ]; then t=symlink
  elif [ -d "$f" ]; then t=directory
  elif [ -f "$f" ]; then t=file
  else t=other
  fi
  s=$(stat -c %s "$f" 2>/dev/null) || s=-
  printf '%s\t%s\t%s\0' "$t" "$s" "${f##*/}" >> "$d/list"
  n=$((n + 1))
done
{
  printf 'LIST ok %s\n' "$trunc"
  cat "$d/list"
} > "$d/post"
kmcp_post "$d/post"
"#;

/// Dispatch-only exec (no relay configured): just run the command, detached from output.
const DISPATCH_BODY: &str = r#"if [ -n "${KMCP_CWD:-}" ]; then cd "$KMCP_CWD" || exit 1; fi
exec sh -c "$KMCP_CMD" > /dev/null 2>&1 < /dev/null
"#;

/// Which wrapper to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Exec,
    Read,
    Write,
    List,
    Dispatch,
}

impl Script {
    /// The full script text (constant per purpose).
    pub fn text(self) -> String {
        let (kind, body) = match self {
            Script::Exec => ("EXEC", EXEC_BODY),
            Script::Read => ("READ", READ_BODY),
            Script::Write => ("WRITE", WRITE_BODY),
            Script::List => ("LIST", LIST_BODY),
            Script::Dispatch => return DISPATCH_BODY.to_string(),
        };
        format!("KMCP_KIND={kind}\n{PRELUDE}{body}")
    }
}

/// `exec_config.cmd` for a script: `sh -c '<script>'`, quoted for a shell-style split.
pub fn command_line(script: Script) -> String {
    let text = script.text();
    // The scripts contain no NUL, so quoting cannot fail; fall back to a harmless no-op.
    shlex::try_join(["sh", "-c", text.as_str()]).unwrap_or_else(|_| "true".to_string())
}

/// The `ExecConfig` that runs `script` with `env` (all `KMCP_*` inputs plus any user
/// variables) as `user` (None = the image's default user).
pub fn exec_config(
    script: Script,
    env: BTreeMap<String, String>,
    user: Option<String>,
) -> ExecConfig {
    ExecConfig {
        cmd: command_line(script),
        environment: env,
        workdir: None,
        privileged: false,
        user,
    }
}

/// Whether an environment variable name is acceptable for a user's command.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("KMCP_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const NASTY: &str = "echo 'single' \"double\" $(echo sub) `tick` \\back\\slash\nline2\t$HOME ${X:-y} ; | & * ? ~ é 中文 🦀 '\"'\"'";

    #[test]
    fn every_script_survives_a_shell_style_split() {
        for script in [
            Script::Exec,
            Script::Read,
            Script::Write,
            Script::List,
            Script::Dispatch,
        ] {
            let cmd = command_line(script);
            let argv = shlex::split(&cmd).expect("splits");
            assert_eq!(argv, vec!["sh".to_string(), "-c".into(), script.text()]);
        }
    }

    #[test]
    fn scripts_parse_with_sh() {
        for script in [Script::Exec, Script::Read, Script::Write, Script::List] {
            let out = Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(script.text())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{script:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn command_text_arrives_byte_for_byte_through_split_and_sh() {
        // What the dispatch wrapper does with KMCP_CMD, minus the redirection: prove the
        // environment route keeps arbitrary text intact through shlex split + a real sh.
        let cmd = shlex::try_join(["sh", "-c", "printf '%s' \"$KMCP_CMD\""]).unwrap();
        let argv = shlex::split(&cmd).unwrap();
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("KMCP_CMD", NASTY)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), NASTY);
    }

    #[test]
    fn env_names() {
        assert!(is_valid_env_name("FOO_1"));
        assert!(is_valid_env_name("_x"));
        for bad in ["", "1A", "A-B", "A B", "KMCP_CMD", "é"] {
            assert!(!is_valid_env_name(bad), "{bad}");
        }
    }
}
