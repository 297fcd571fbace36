//! The POSIX `sh` text of the wrapper scripts, one per [`Script`].
//!
//! A relay script runs in two stages. Stage 1 (the `sh -c` argument Kasm starts, whose
//! environment holds the ticket line) copies the ticket line, unsets it and re-executes `sh`
//! with stage 2, handing the tickets over on descriptor 3 (a here-document, i.e. a pipe).
//! From then on no process has the tickets in its environment or argv: stage 2 reads them
//! into shell variables, closes the descriptor, and gives them to the uploader on its stdin
//! (`curl -K -`, python3 reading stdin; GNU wget gets the URL on a pipe and the key in a
//! private file that exists only during its request, since it cannot read its config from a
//! pipe). The user's
//! command starts only after that, with the caller's `env` applied to it alone.
//!
//! Every variable input is read from the environment under the names of `Var` by a
//! generated prologue; the bodies below only use the `kmcp_*` shell variables.

use super::vars::{Script, TICKETS_ENV, USER_ENV_PREFIX};

/// Stage 2's helpers: tickets from fd 3, stale temp cleanup, a locked temp dir, uploads and
/// downloads with retries, failure records (`workdir_removed` when the record to upload is
/// gone with the temp dir), the allowed-roots check on resolved paths.
const PRELUDE: &str = r#"IFS=' ' read -r kmcp_url kmcp_key kmcp_get kmcp_get_key kmcp_sput kmcp_sput_key <&3 || exit 1
exec 3<&-
kmcp_now() { date +%s 2>/dev/null || echo 0; }
kmcp_end=$(( $(kmcp_now) + ${kmcp_budget:-60} - 1 ))
kmcp_stale_min=$(( ${kmcp_stale:-3600} / 60 + 1 ))
kmcp_locks=
command -v flock >/dev/null 2>&1 && kmcp_locks=1
kmcp_old() { [ -n "$(find "$1" -prune -mmin +"$kmcp_stale_min" 2>/dev/null)" ]; }
kmcp_clean() {
  for f in "$1/$2".*; do
    [ -e "$f" ] || continue
    if [ -n "$kmcp_locks" ]; then
      flock -n "$f" rm -rf "$f" >/dev/null 2>&1
    elif kmcp_old "$f"; then
      rm -rf "$f"
    fi
  done
  for f in "$1/$2"-new.*; do
    [ -e "$f" ] || continue
    kmcp_old "$f" && rm -rf "$f"
  done
}
kmcp_base=${TMPDIR:-/tmp}
{ [ -d "$kmcp_base" ] && [ -w "$kmcp_base" ]; } || kmcp_base=/tmp
kmcp_clean "$kmcp_base" kmcp
d=$(mktemp -d "$kmcp_base/kmcp-new.XXXXXX") || exit 1
exec 9<"$d"
[ -n "$kmcp_locks" ] && flock -n 9
mv "$d" "$kmcp_base/kmcp.${d##*.}" 2>/dev/null && d="$kmcp_base/kmcp.${d##*.}"
kmcp_readers=
kmcp_cleanup() {
  trap - EXIT HUP INT TERM
  [ -n "$kmcp_readers" ] && kmcp_stop_readers
  [ -n "${kmcp_tmp:-}" ] && rm -f "$kmcp_tmp"
  # The work directory vanished under the script (sh exits at the first redirection into it
  # by `:`): report that instead of leaving the server to wait for its deadline.
  [ -d "$d" ] || kmcp_post "$d/post"
  rm -rf "$d"
}
trap kmcp_cleanup EXIT
trap 'kmcp_cleanup; exit 129' HUP
trap 'kmcp_cleanup; exit 130' INT
trap 'kmcp_cleanup; exit 143' TERM
kmcp_wget_status() {
  c=000
  while read -r a b rest; do
    case $a in HTTP/*) c=$b ;; esac
  done
  echo "$c"
}
kmcp_gnu_wget() {
  case $(wget --version 2>/dev/null) in *'GNU Wget'*) return 0 ;; esac
  return 1
}
kmcp_http() {
  case $1 in
    post) kmcp_u=$kmcp_url; kmcp_k=$kmcp_key ;;
    chunk) kmcp_u=$kmcp_sput; kmcp_k=$kmcp_sput_key ;;
    *) kmcp_u=$kmcp_get; kmcp_k=$kmcp_get_key ;;
  esac
  if command -v curl >/dev/null 2>&1; then
    if [ "$1" != get ]; then
      printf 'url = "%s"\nheader = "X-Relay-Key: %s"\n' "$kmcp_u" "$kmcp_k" |
        curl -K - -sS -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$2" -o /dev/null -w '%{http_code}' 2>/dev/null
    else
      printf 'url = "%s"\nheader = "X-Relay-Key: %s"\n' "$kmcp_u" "$kmcp_k" |
        curl -K - -sS -o "$2" -w '%{http_code}' 2>/dev/null
    fi
  elif kmcp_gnu_wget; then
    # GNU wget reads --config twice, so not from a pipe: a private file that lives only as
    # long as this one request.
    ( umask 077; printf 'header = X-Relay-Key: %s\n' "$kmcp_k" > "$d/wgetrc" ) || return 1
    if [ "$1" != get ]; then
      wget -S --tries=1 -O /dev/null --config="$d/wgetrc" -i /dev/fd/5 --header='Content-Type: application/octet-stream' --post-file="$2" 5<<KMCP_URL 2>&1 >/dev/null | kmcp_wget_status
$kmcp_u
KMCP_URL
    else
      wget -S --tries=1 -O "$2" --config="$d/wgetrc" -i /dev/fd/5 5<<KMCP_URL 2>&1 >/dev/null | kmcp_wget_status
$kmcp_u
KMCP_URL
    fi
    rm -f "$d/wgetrc"
  elif command -v python3 >/dev/null 2>&1; then
    printf '%s\n%s\n%s\n%s\n' "$kmcp_u" "$kmcp_k" "$1" "$2" | python3 -c 'import sys, shutil, urllib.request, urllib.error
u, k, m, p = (sys.stdin.readline().rstrip("\n") for _ in range(4))
h = {"X-Relay-Key": k}
try:
    if m != "get":
        h["Content-Type"] = "application/octet-stream"
        with open(p, "rb") as f:
            data = f.read()
        r = urllib.request.urlopen(urllib.request.Request(u, data=data, method="POST", headers=h), timeout=120)
        r.read()
    else:
        r = urllib.request.urlopen(urllib.request.Request(u, headers=h), timeout=120)
        with open(p, "wb") as f:
            shutil.copyfileobj(r, f)
    print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")' 2>/dev/null
  else
    echo none
  fi
}
kmcp_transfer() {
  kmcp_wait=1
  kmcp_try=0
  while :; do
    kmcp_code=$(kmcp_http "$1" "$2")
    case $kmcp_code in
      2??) return 0 ;;
      429|5??|000|'') ;;
      *) return 1 ;;
    esac
    kmcp_try=$((kmcp_try + 1))
    [ "$kmcp_try" -lt 12 ] || return 1
    [ $(( $(kmcp_now) + kmcp_wait )) -lt "$kmcp_end" ] || return 1
    sleep "$kmcp_wait"
    [ "$kmcp_wait" -lt 8 ] && kmcp_wait=$((kmcp_wait * 2))
  done
}
kmcp_post() {
  if [ ! -f "$1" ]; then
    # Something (a command cleaning /tmp) removed the work directory: say so from a new one
    # (kmcp_cleanup removes that one as it would the first), with the exit code the exec
    # body saw, if any.
    d=$(mktemp -d "$kmcp_base/kmcp-new.XXXXXX" 2>/dev/null ||
      { mkdir -p "$kmcp_base" && mktemp -d "$kmcp_base/kmcp-new.XXXXXX"; }) || exit 1
    printf '%s err workdir_removed %s\n' "$kmcp_kind" "${rc:-}" > "$d/post"
    set -- "$d/post"
  fi
  kmcp_transfer post "$1"
}
kmcp_chunk_post() { kmcp_transfer chunk "$1"; }
kmcp_fetch() { kmcp_transfer get "$1"; }
kmcp_fail() {
  printf '%s err %s %s\n' "$kmcp_kind" "$1" "$(printf '%s' "${2:-}" | tr '\n' ' ')" > "$d/post"
  kmcp_post "$d/post"
  exit 0
}
kmcp_realpath() {
  kmcp_real=$(realpath "$1" 2>/dev/null && printf x) || return 1
  kmcp_real=${kmcp_real%x}
  kmcp_real=${kmcp_real%?}
}
kmcp_inside() {
  while IFS= read -r root; do
    [ -n "$root" ] || continue
    if kmcp_realpath "$root"; then r=$kmcp_real; else r=$root; fi
    [ "$r" = / ] && return 0
    case "$1" in "$r"|"$r"/*) return 0 ;; esac
  done <<KMCP_ROOTS_END
$kmcp_roots
KMCP_ROOTS_END
  return 1
}
"#;

/// Turns `$kmcp_env` (names) and `KMCP_E_<name>` (values) into `NAME=value` positional
/// parameters for `env`, unsetting the carriers so the command does not inherit them.
const USER_ENV: &str = r#"kmcp_sh=$(command -v sh) || kmcp_sh=/bin/sh
set --
for kmcp_n in $kmcp_env; do
  case $kmcp_n in ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;; esac
  eval "kmcp_v=\${KMCP_E_$kmcp_n-}"
  unset "KMCP_E_$kmcp_n"
  set -- "$@" "$kmcp_n=$kmcp_v"
done
"#;

/// Runs the command under a timeout with the caller's environment, keeps the first
/// `$kmcp_cap` bytes of stdout and stderr each (draining the rest so the command is not
/// killed by SIGPIPE while it runs), waits a moment for processes it left behind to close
/// its output, then stops the readers, snapshots the output once and POSTs an `EXEC` record
/// built from the snapshot (`incomplete` = 1 when writers were still holding the output).
const EXEC_BODY: &str = r#"kmcp_reader() {
  {
    exec 4<&0
    head -c "$kmcp_cap" <&4 > "$2" &
    echo "$!" > "$2.pid"
    wait "$!"
    exec cat <&4 > /dev/null 4<&-
  } < "$1" 9<&- &
}
kmcp_stop_readers() {
  kmcp_readers=
  kill -KILL "$r1" "$r2" 2>/dev/null
  for p in "$d/out.pid" "$d/err.pid"; do
    if [ -f "$p" ] && read -r hp < "$p"; then kill -KILL "$hp" 2>/dev/null; fi
  done
}
kmcp_cw=
kmcp_cancel_watch() {
  [ -n "$kmcp_cancel" ] || return 0
  (
    f="$kmcp_base/kmcp-cancel.$kmcp_cancel"
    while kill -0 "$1" 2>/dev/null; do
      if [ -e "$f" ]; then
        rm -f "$f"
        kill -TERM "$1" 2>/dev/null
        sleep 2
        kill -KILL "$1" 2>/dev/null
        exit 0
      fi
      sleep 0.2 2>/dev/null || sleep 1
    done
  ) > /dev/null 2>&1 < /dev/null 9<&- &
  kmcp_cw=$!
}
mkfifo "$d/o" "$d/e" || exit 1
kmcp_reader "$d/o" "$d/out"
r1=$!
kmcp_reader "$d/e" "$d/err"
r2=$!
kmcp_readers=1
t0=$(date +%s%N 2>/dev/null)
s0=$(date +%s)
rc=0
if [ -n "$kmcp_cwd" ] && ! cd "$kmcp_cwd" 2>/dev/null; then
  printf 'kasm-mcp: cannot change to working_dir %s\n' "$kmcp_cwd" > "$d/e"
  : > "$d/o"
  rc=1
elif timeout -k 2 5 true >/dev/null 2>&1; then
  timeout -k 2 "$kmcp_timeout" env "$@" "$kmcp_sh" -c -- "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null 9<&- &
  pid=$!
  kmcp_cancel_watch "$pid"
  wait "$pid"
  rc=$?
elif command -v timeout >/dev/null 2>&1; then
  timeout "$kmcp_timeout" env "$@" "$kmcp_sh" -c -- "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null 9<&- &
  pid=$!
  kmcp_cancel_watch "$pid"
  wait "$pid"
  rc=$?
else
  env "$@" "$kmcp_sh" -c -- "$kmcp_cmd" > "$d/o" 2> "$d/e" < /dev/null 9<&- &
  pid=$!
  kmcp_cancel_watch "$pid"
  (
    i=0
    while [ "$i" -lt "$kmcp_timeout" ]; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || exit 0
      i=$((i + 1))
    done
    : > "$d/timedout"
    kill -TERM "$pid" 2>/dev/null
    sleep 2
    kill -KILL "$pid" 2>/dev/null
  ) > /dev/null 2>&1 < /dev/null 9<&- &
  wd=$!
  wait "$pid" 2>/dev/null
  rc=$?
  kill "$wd" 2>/dev/null
fi
[ -n "$kmcp_cw" ] && kill "$kmcp_cw" 2>/dev/null
t1=$(date +%s%N 2>/dev/null)
s1=$(date +%s)
to=0
if [ -e "$d/timedout" ]; then
  to=1
elif [ $((s1 - s0)) -ge "$kmcp_timeout" ]; then
  case "$rc" in 124|137|143) to=1 ;; esac
fi
incomplete=0
i=0
while kill -0 "$r1" 2>/dev/null || kill -0 "$r2" 2>/dev/null; do
  if [ "$i" -ge 300 ]; then
    incomplete=1
    break
  fi
  if sleep 0.01 2>/dev/null; then i=$((i + 1)); else sleep 1; i=$((i + 100)); fi
done
kmcp_stop_readers
dur=-
case "$t0$t1" in
  *[!0-9]*|'') ;;
  *) dur=$(( (t1 - t0) / 1000000 )) ;;
esac
for f in out err; do
  if [ -f "$d/$f" ]; then cat "$d/$f" > "$d/$f.snap"; else : > "$d/$f.snap"; fi
done
{
  printf 'EXEC %s %s %s %s %s %s\n' "$rc" "$to" "$dur" "$(wc -c < "$d/out.snap")" "$(wc -c < "$d/err.snap")" "$incomplete"
  cat "$d/out.snap" "$d/err.snap"
} > "$d/post"
kmcp_post "$d/post"
"#;

/// Runs the command in its own session (`setsid`, so its process group id is its pid and a
/// later exec can signal the whole group) with stdout and stderr written to spill files in
/// `$kmcp_base/kmcp-job.<job id>/` (mode 0700), which keep the whole output (and, once it
/// ends, the command's `exit_code`). It first sends
/// `START <g|p> <id> <spill dir>` to the stream ticket (`g`: a process group id, `p`: a
/// single pid when `setsid` is missing), then every `$kmcp_interval` seconds, per stream
/// that grew, one `CHUNK <seq> <o|e> <offset>` frame with at most `$kmcp_chunk` of its
/// newest bytes (output that grows faster is skipped in the chunks, never in the files).
/// When the command ends it sends the last chunks and then the usual `EXEC` record (the
/// first `$kmcp_cap` bytes of each file; `incomplete` = 1 when processes the command left
/// behind still hold the files 3 s after it ended) to the result ticket. A watchdog kills the group
/// if `timeout` is missing or does not end it.
const STREAM_BODY: &str = r#"kmcp_spill="$kmcp_base/kmcp-job.$kmcp_job"
( umask 077; mkdir -p "$kmcp_spill" ) || kmcp_fail spill_failed
: > "$kmcp_spill/stdout" && : > "$kmcp_spill/stderr" || kmcp_fail spill_failed
kmcp_seq=0
kmcp_send() {
  kmcp_size=$(wc -c < "$1" 2>/dev/null) || return 1
  kmcp_size=${kmcp_size##* }
  [ "$kmcp_size" -gt "$3" ] || return 1
  kmcp_from=$3
  [ $((kmcp_size - kmcp_from)) -gt "$kmcp_chunk" ] && kmcp_from=$((kmcp_size - kmcp_chunk))
  kmcp_seq=$((kmcp_seq + 1))
  {
    printf 'CHUNK %s %s %s\n' "$kmcp_seq" "$2" "$kmcp_from"
    tail -c +$((kmcp_from + 1)) "$1" | head -c $((kmcp_size - kmcp_from))
  } > "$d/chunk"
  kmcp_http chunk "$d/chunk" >/dev/null
  return 0
}
kmcp_ss=
command -v setsid >/dev/null 2>&1 && kmcp_ss=setsid
set -- env "$@" "$kmcp_sh" -c -- "$kmcp_cmd"
if timeout -k 2 5 true >/dev/null 2>&1; then
  set -- timeout -k 2 "$kmcp_timeout" "$@"
elif command -v timeout >/dev/null 2>&1; then
  set -- timeout "$kmcp_timeout" "$@"
fi
t0=$(date +%s%N 2>/dev/null)
s0=$(kmcp_now)
if [ -n "$kmcp_cwd" ] && ! cd "$kmcp_cwd" 2>/dev/null; then
  printf 'kasm-mcp: cannot change to working_dir %s\n' "$kmcp_cwd" > "$kmcp_spill/stderr"
  echo 1 > "$kmcp_spill/exit_code"
else
  (
    $kmcp_ss "$kmcp_sh" -c 'echo "$$" > "$0.tmp" && mv "$0.tmp" "$0"; exec "$@"' "$d/pgid" "$@"
    echo "$?" > "$kmcp_spill/.exit_code" && mv "$kmcp_spill/.exit_code" "$kmcp_spill/exit_code"
  ) > "$kmcp_spill/stdout" 2> "$kmcp_spill/stderr" < /dev/null 9<&- &
  kmcp_waiter=$!
fi
# Whether the subshell that waits for the command still runs (a zombie does not count).
kmcp_waiting() {
  [ -n "${kmcp_waiter:-}" ] || return 1
  kmcp_st=$(cut -d' ' -f3 "/proc/$kmcp_waiter/stat" 2>/dev/null) || return 0
  case $kmcp_st in Z|X|'') return 1 ;; esac
  return 0
}
kmcp_kind_id=p
[ -n "$kmcp_ss" ] && kmcp_kind_id=g
i=0
while [ ! -s "$d/pgid" ] && [ ! -e "$kmcp_spill/exit_code" ] && [ "$i" -lt 500 ]; do
  if sleep 0.01 2>/dev/null; then i=$((i + 1)); else sleep 1; i=$((i + 100)); fi
done
pg=-
[ -s "$d/pgid" ] && read -r pg < "$d/pgid"
printf 'START %s %s %s\n' "$kmcp_kind_id" "$pg" "$kmcp_spill" > "$d/start"
kmcp_chunk_post "$d/start"
kmcp_kill() {
  case $pg in ''|-|*[!0-9]*) return ;; esac
  if [ "$kmcp_kind_id" = g ]; then kill "-$1" "-$pg" 2>/dev/null; else kill "-$1" "$pg" 2>/dev/null; fi
}
so=0
se=0
to=0
# Until the command ends (its exit code is kept beside the output, so a command that removes
# the wrapper's work directory still has it reported), or something removes the spill files.
while [ ! -e "$kmcp_spill/exit_code" ] && [ -d "$kmcp_spill" ] && kmcp_waiting; do
  sleep "$kmcp_interval" 2>/dev/null || sleep 1
  kmcp_send "$kmcp_spill/stdout" o "$so" && so=$kmcp_size
  kmcp_send "$kmcp_spill/stderr" e "$se" && se=$kmcp_size
  if [ "$to" = 0 ] && [ $(( $(kmcp_now) - s0 )) -gt $((kmcp_timeout + 4)) ]; then
    to=1
    kmcp_kill TERM
    sleep 2
    kmcp_kill KILL
  fi
done
rc=
[ -e "$kmcp_spill/exit_code" ] && read -r rc < "$kmcp_spill/exit_code"
# The waiter was killed: the exit status is lost (the output is in the spill files).
[ -n "$rc" ] || [ ! -d "$d" ] || kmcp_fail exit_status_lost
t1=$(date +%s%N 2>/dev/null)
incomplete=0
i=0
while ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -qF -- "-> $kmcp_spill/std"; do
  if [ "$i" -ge 30 ]; then
    incomplete=1
    break
  fi
  sleep 0.1 2>/dev/null || sleep 1
  i=$((i + 1))
done
s1=$(kmcp_now)
if [ $((s1 - s0)) -ge "$kmcp_timeout" ]; then
  case "$rc" in 124|137|143) to=1 ;; esac
fi
kmcp_send "$kmcp_spill/stdout" o "$so"
kmcp_send "$kmcp_spill/stderr" e "$se"
dur=-
case "$t0$t1" in
  *[!0-9]*|'') ;;
  *) dur=$(( (t1 - t0) / 1000000 )) ;;
esac
head -c "$kmcp_cap" "$kmcp_spill/stdout" > "$d/out.snap"
head -c "$kmcp_cap" "$kmcp_spill/stderr" > "$d/err.snap"
{
  printf 'EXEC %s %s %s %s %s %s\n' "$rc" "$to" "$dur" "$(wc -c < "$d/out.snap")" "$(wc -c < "$d/err.snap")" "$incomplete"
  cat "$d/out.snap" "$d/err.snap"
} > "$d/post"
kmcp_post "$d/post"
"#;

/// Uploads the file `$kmcp_path` (at most `$kmcp_max` bytes) after checking its resolved path.
const READ_BODY: &str = r#"kmcp_realpath "$kmcp_path" || kmcp_fail not_found
real=$kmcp_real
[ -e "$real" ] || kmcp_fail not_found
kmcp_inside "$real" || kmcp_fail outside_roots "resolves to $real"
[ -d "$real" ] && kmcp_fail is_directory
[ -f "$real" ] || kmcp_fail not_a_file
[ -r "$real" ] || kmcp_fail permission_denied
size=$(stat -c %s "$real" 2>/dev/null) || size=$(wc -c < "$real") || kmcp_fail read_failed
[ "$size" -le "$kmcp_max" ] || kmcp_fail too_large "$size"
{
  printf 'READ ok %s\n' "$size"
  head -c "$kmcp_max" "$real"
} > "$d/post" || kmcp_fail read_failed
kmcp_post "$d/post"
"#;

/// Downloads `$kmcp_size` bytes into a locked temp file next to `$kmcp_path` (removing the
/// temp files of killed writers first), sets the mode (requested, else a regular file's own,
/// else the umask default — never a symlink's), syncs it, renames it into place and reports
/// the sha256.
const WRITE_BODY: &str = r#"path=$kmcp_path
dir=${path%/*}
[ -n "$dir" ] || dir=/
name=${path##*/}
[ -n "$name" ] || kmcp_fail is_directory
a=$dir
while [ ! -e "$a" ]; do
  a=${a%/*}
  [ -n "$a" ] || a=/
done
kmcp_realpath "$a" || kmcp_fail resolve_failed
kmcp_inside "$kmcp_real" || kmcp_fail outside_roots "resolves to $kmcp_real"
if [ ! -d "$dir" ]; then
  [ "$kmcp_parents" = 1 ] || kmcp_fail parent_missing
  mkdir -p "$dir" 2>/dev/null || kmcp_fail mkdir_failed
fi
kmcp_realpath "$dir" || kmcp_fail resolve_failed
rd=$kmcp_real
[ -d "$rd" ] || kmcp_fail parent_missing
kmcp_inside "$rd" || kmcp_fail outside_roots "resolves to $rd"
final="$rd/$name"
[ -d "$final" ] && kmcp_fail is_directory
kmcp_clean "$rd" .kmcp-write
kmcp_tmp=$(mktemp "$rd/.kmcp-write-new.XXXXXX" 2>/dev/null) || kmcp_fail permission_denied
exec 8<"$kmcp_tmp"
[ -n "$kmcp_locks" ] && flock -n 8
mv "$kmcp_tmp" "$rd/.kmcp-write.${kmcp_tmp##*.}" 2>/dev/null && kmcp_tmp="$rd/.kmcp-write.${kmcp_tmp##*.}"
tmp=$kmcp_tmp
kmcp_fetch "$tmp" || kmcp_fail download_failed
got=$(wc -c < "$tmp")
[ "$got" -eq "$kmcp_size" ] || kmcp_fail size_mismatch "got $got"
if [ -n "$kmcp_mode" ]; then
  mode=$kmcp_mode
elif [ -f "$final" ] && [ ! -L "$final" ]; then
  mode=$(stat -c %a "$final" 2>/dev/null) || mode=
fi
[ -n "${mode:-}" ] || mode=$(printf '%o' $(( 0666 & ~0$(umask) )))
chmod "$mode" "$tmp" 2>/dev/null || kmcp_fail chmod_failed
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$final" 2>/dev/null || kmcp_fail rename_failed
kmcp_tmp=
exec 8<&-
sync "$rd" 2>/dev/null
sum=-
if command -v sha256sum >/dev/null 2>&1; then
  sum=$(sha256sum < "$final" | cut -d ' ' -f 1)
fi
printf 'WRITE ok %s\n' "$sum" > "$d/post"
kmcp_post "$d/post"
"#;

/// Lists `$kmcp_path` (at most `$kmcp_max` entries) as NUL-terminated `type\tsize\tname`.
const LIST_BODY: &str = r#"kmcp_realpath "$kmcp_path" || kmcp_fail not_found
real=$kmcp_real
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
  if [ "$n" -ge "$kmcp_max" ]; then
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

/// Dispatch-only exec (no relay configured): run the command with the caller's environment,
/// detached from output.
const DISPATCH_BODY: &str = r#"if [ -n "$kmcp_cwd" ]; then cd "$kmcp_cwd" || exit 1; fi
exec env "$@" "$kmcp_sh" -c -- "$kmcp_cmd" > /dev/null 2>&1 < /dev/null
"#;

/// The cancel exec: creates the cancel file named by `$KMCP_CANCEL` in the directory the exec
/// wrapper uses for its temp files (the wrapper's watch removes it and stops the command).
pub fn cancel_text() -> &'static str {
    r#"case ${KMCP_CANCEL-} in ''|*[!0-9a-f]*) exit 1 ;; esac
b=${TMPDIR:-/tmp}
{ [ -d "$b" ] && [ -w "$b" ]; } || b=/tmp
: > "$b/kmcp-cancel.$KMCP_CANCEL"
"#
}

/// Copies each input of `script` from the environment into its shell variable and unsets
/// the environment variable, so nothing the script runs inherits it.
fn prologue(script: Script) -> String {
    let mut text = String::new();
    if let Some(kind) = script.kind() {
        text.push_str(&format!("kmcp_kind={kind}\n"));
    }
    for var in script.vars() {
        let (env, shell) = (var.env(), var.shell());
        text.push_str(&format!("{shell}=${{{env}-}}\nunset {env}\n"));
    }
    text
}

/// The full `sh -c` argument for `script` (constant per script).
pub fn text(script: Script) -> String {
    let body = match script {
        Script::Exec => EXEC_BODY,
        Script::Stream => STREAM_BODY,
        Script::Read => READ_BODY,
        Script::Write => WRITE_BODY,
        Script::List => LIST_BODY,
        Script::Dispatch => return format!("{}{USER_ENV}{DISPATCH_BODY}", prologue(script)),
    };
    let user_env = if matches!(script, Script::Exec | Script::Stream) {
        USER_ENV
    } else {
        ""
    };
    let stage2 = format!("{}{PRELUDE}{user_env}{body}", prologue(script));
    // The scripts contain no NUL, so quoting cannot fail; fall back to a harmless no-op.
    let quoted = shlex::try_quote(&stage2).unwrap_or_else(|_| "true".into());
    format!(
        "kmcp_t=${{{TICKETS_ENV}-}}\nunset {TICKETS_ENV}\nexec sh -c {quoted} kasm-mcp-wrapper 3<<KMCP_TICKETS_END\n$kmcp_t\nKMCP_TICKETS_END\n"
    )
}

/// The prefix of the variables carrying user environment values (for the input renderer).
pub fn user_env_var(name: &str) -> String {
    format!("{USER_ENV_PREFIX}{name}")
}
