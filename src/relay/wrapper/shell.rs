//! The POSIX `sh` text of the wrapper scripts, one per [`Script`].
//!
//! A relay script runs in two stages. Stage 1 (the `sh -c` argument Kasm starts, whose
//! environment holds the ticket line) copies the ticket line, unsets it and re-executes `sh`
//! with stage 2, handing the tickets over on descriptor 3 (a here-document, i.e. a pipe);
//! the streaming script's stage 1 first starts its uploader (`EARLY_UPLOADER`).
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

/// Stage 2's helpers: tickets from fd 3, a clock without processes, stale temp cleanup, the
/// locked work directory, uploads and downloads with retries (several records in one `curl`
/// when it is there), failure records (`workdir_removed` when the record to upload is gone
/// with the temp dir), the allowed-roots check on resolved paths.
///
/// The helpers start as few processes as they can (each fork+exec costs a millisecond on a
/// quiet core and several on a loaded one): the clock is `/proc/uptime` read with `read`,
/// answers of `command -v` and HTTP status codes go through files in the work directory
/// instead of `$(…)` subshells, and the uploader reads its configuration from a
/// here-document instead of a `printf |` pipeline.
const PRELUDE: &str = r#"IFS=' ' read -r kmcp_url kmcp_key kmcp_get kmcp_get_key kmcp_sput kmcp_sput_key <&3 || exit 1
exec 3<&-
# This shell's pid as /proc names it, for kmcp_cleanup (compared there with /proc/self of the
# same /proc, so it holds whichever pid namespace that /proc belongs to; empty without /proc).
kmcp_me=
{ read -r kmcp_me kmcp_x < /proc/self/stat; } 2>/dev/null
kmcp_nl='
'
# kmcp_cs: centiseconds on a monotonic clock (/proc/uptime; kmcp_fine=1), else whole
# seconds from `date` (too coarse for duration_ms: the record says `-` and the server times it).
kmcp_clock() {
  kmcp_up=
  { read -r kmcp_up kmcp_x < /proc/uptime; } 2>/dev/null
  case $kmcp_up in
    [0-9]*.[0-9][0-9]) kmcp_cs=$(( ${kmcp_up%.*} * 100 + 1${kmcp_up#*.} - 100 )); kmcp_fine=1 ;;
    *) kmcp_fine=; kmcp_cs=$(date +%s 2>/dev/null) || kmcp_cs=0; kmcp_cs=$(( ${kmcp_cs:-0} * 100 )) ;;
  esac
}
kmcp_clock
kmcp_end=$(( kmcp_cs / 100 + ${kmcp_budget:-60} - 1 ))
kmcp_stale_min=$(( ${kmcp_stale:-3600} / 60 + 1 ))
kmcp_locks=
command -v flock >/dev/null 2>&1 && kmcp_locks=1
kmcp_old() { [ -n "$(find "$1" -prune -mmin +"$kmcp_stale_min" 2>/dev/null)" ]; }
# With flock, a directory (`$2.*` or `$2-new.*`) that has a `held` file, made once its lock
# was taken, goes once it is unlocked (its wrapper is gone); so does a `$2.*` file (locked from
# the start). A directory without `held` goes only when old: its wrapper has not taken the lock
# yet (or was killed before it did); so does a `$2-new.*` file. (Cleaners before `held` removed
# any unlocked `$2.*` and `$2-new.*` only when old: a streaming wrapper, which locks late, keeps
# its directory as `$2-new.*` so that they leave it alone too; its uploader's FIFOs beside it,
# `$2-new.<job>.cfg` and `.codes`, are `$2-new.*` files.)
kmcp_clean() {
  for f in "$1/$2".* "$1/$2"-new.*; do
    [ -e "$f" ] || continue
    # Never this wrapper's own (the streaming one cleans after making them; skipping its FIFOs
    # also saves a `find` each).
    case $f in "${d:-}"|"${kmcp_ff:-}".cfg|"${kmcp_ff:-}".codes) continue ;; esac
    kmcp_by=age
    if [ -n "$kmcp_locks" ]; then
      if [ -d "$f" ]; then
        [ -e "$f/held" ] && kmcp_by=lock
      else
        case $f in "$1/$2".*) kmcp_by=lock ;; esac
      fi
    fi
    if [ "$kmcp_by" = lock ]; then
      flock -n "$f" rm -rf "$f" >/dev/null 2>&1
    elif kmcp_old "$f"; then
      rm -rf "$f"
    fi
  done
}
kmcp_base=${TMPDIR:-/tmp}
{ [ -d "$kmcp_base" ] && [ -w "$kmcp_base" ]; } || kmcp_base=/tmp
# Locks the directory $1, open on fd 9, and marks it `held`: the cleaner above then removes
# it as soon as it is unlocked. (`echo`, not `:`: a failed redirection of a special built-in
# would end the script.)
kmcp_hold() {
  [ -n "$kmcp_locks" ] && flock -n 9 && { echo > "$1/held"; } 2>/dev/null
}
# Locks the new work directory $1 (kmcp-new.*) and renames it to kmcp.*, which the cleaner
# above removes only when unlocked (or, without flock, old).
kmcp_lock() {
  exec 9<"$1"
  kmcp_hold "$1"
  d=$1
  # Never into a kmcp.* that exists already (mv would move the directory inside it).
  [ -e "$kmcp_base/kmcp.${1##*.}" ] ||
    { mv "$1" "$kmcp_base/kmcp.${1##*.}" 2>/dev/null && d="$kmcp_base/kmcp.${1##*.}"; }
}
kmcp_readers=
# The early uploader stage 1 started (the streaming script only, see EARLY_UPLOADER): its pid
# (empty: none; kmcp_ul is emptied once its configuration, fd 7, is closed, kmcp_fo stays) and
# the prefix of its FIFOs (set also when they may exist without it).
kmcp_ul=${1-}
kmcp_fo=$kmcp_ul
kmcp_ff=${2-}
# Whether $1 is a FIFO of this user and not a link (made by stage 1's `mkfifo`, which fails
# on any existing name; no other user can make a file owned by this one).
kmcp_mine() { [ -p "$1" ] && [ ! -h "$1" ] && [ -O "$1" ]; }
# Removes the early uploader's FIFOs that are this user's (by name: kmcp_post may have moved
# d), with $d and whatever else the arguments name, in one `rm`.
kmcp_rm() {
  if [ -n "$kmcp_ff" ]; then
    kmcp_mine "$kmcp_ff.cfg" && set -- "$@" "$kmcp_ff.cfg"
    kmcp_mine "$kmcp_ff.codes" && set -- "$@" "$kmcp_ff.codes"
  fi
  [ $# -eq 0 ] || rm -rf "$@"
}
kmcp_cleanup() {
  # A signal that reaches a background child of this shell between its fork and its exec
  # (or before it resets the inherited traps) runs this shell's trap in the child: dash and
  # bash both do. Only the wrapper itself cleans up; such a child just ends. (`read` of
  # /proc/self is done by the shell itself, so it names the process running the trap.)
  if [ -n "$kmcp_me" ] && { read -r kmcp_self kmcp_x < /proc/self/stat; } 2>/dev/null &&
    [ "$kmcp_self" != "$kmcp_me" ]; then
    exit 143
  fi
  trap - EXIT HUP INT TERM
  [ -n "${kmcp_ul:-}" ] && kmcp_upwait
  # The early uploader may still be sending files of the work directory (a signal during
  # kmcp_flush): its status codes end when it exits (fd 7 is closed by now, so it does).
  [ -n "${kmcp_fo:-}" ] && { while read -r kmcp_x <&8; do :; done; } 2>/dev/null
  [ -n "$kmcp_readers" ] && kmcp_stop_readers
  # The streaming script's nap timer (it would signal this pid later).
  [ -n "${kmcp_tm:-}" ] && kill -KILL "$kmcp_tm" 2>/dev/null
  [ -n "${kmcp_tmp:-}" ] && rm -f "$kmcp_tmp"
  # The work directory vanished under the script (sh exits at the first redirection into it
  # by `:`): report that instead of leaving the server to wait for its deadline.
  [ -d "$d" ] || kmcp_post "$d/post"
  # The early uploader's FIFOs go in the same `rm`.
  kmcp_rm "$d"
}
kmcp_traps() {
  trap kmcp_cleanup EXIT
  trap 'kmcp_cleanup; exit 129' HUP
  trap 'kmcp_cleanup; exit 130' INT
  trap 'kmcp_cleanup; exit 143' TERM
}
# kmcp_sh: the sh found on the wrapper's own PATH (the caller's env may change PATH).
kmcp_which_sh() {
  { command -v sh > "$d/sh" && read -r kmcp_sh < "$d/sh"; } 2>/dev/null || kmcp_sh=/bin/sh
}
# kmcp_tk: how `timeout` runs: k (takes -k), plain (no -k), or empty (no timeout). A regular
# file (GNU coreutils) takes -k; a link (a busybox applet, older ones lack -k) is probed.
# kmcp_tg=1: the regular file, which also puts itself in a process group of its own
# (`setpgid(0, 0)` unless --foreground: GNU and uutils coreutils), so the command needs no
# `setsid` (kmcp_start still checks /proc before it reports the group).
kmcp_timeout_mode() {
  kmcp_tk=
  kmcp_tg=
  kmcp_tp=
  { command -v timeout > "$d/timeout" && read -r kmcp_tp < "$d/timeout"; } 2>/dev/null || return 0
  kmcp_tk=plain
  case $kmcp_tp in
    /*) if [ ! -L "$kmcp_tp" ] && ! [ "$kmcp_tp" -ef /bin/busybox ] && ! [ "$kmcp_tp" -ef /usr/bin/busybox ]; then
          kmcp_tk=k
          kmcp_tg=1
          return 0
        fi ;;
  esac
  # quick: only whether it is a regular file (no probe, which costs a process start).
  [ "${1:-}" = quick ] && return 0
  timeout -k 2 5 true >/dev/null 2>&1 && kmcp_tk=k
  return 0
}
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
# One request; prints its HTTP status code (000: no answer, none: no uploader).
kmcp_http() {
  case $1 in
    post) kmcp_u=$kmcp_url; kmcp_k=$kmcp_key ;;
    chunk) kmcp_u=$kmcp_sput; kmcp_k=$kmcp_sput_key ;;
    *) kmcp_u=$kmcp_get; kmcp_k=$kmcp_get_key ;;
  esac
  if command -v curl >/dev/null 2>&1; then
    if [ "$1" != get ]; then
      curl -K - -sS -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$2" -o /dev/null -w '%{http_code}\n' 2>/dev/null <<KMCP_CFG
url = "$kmcp_u"
header = "X-Relay-Key: $kmcp_k"
KMCP_CFG
    else
      curl -K - -sS -o "$2" -w '%{http_code}\n' 2>/dev/null <<KMCP_CFG
url = "$kmcp_u"
header = "X-Relay-Key: $kmcp_k"
KMCP_CFG
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
  [ "$1" = get ] || [ -f "$2" ] || return 1
  kmcp_wait=1
  kmcp_try=0
  while :; do
    kmcp_code=
    kmcp_http "$1" "$2" > "$d/code"
    { read -r kmcp_code < "$d/code"; } 2>/dev/null
    case $kmcp_code in
      2??) return 0 ;;
      429|5??|000|'') ;;
      *) return 1 ;;
    esac
    kmcp_try=$((kmcp_try + 1))
    [ "$kmcp_try" -lt 12 ] || return 1
    kmcp_clock
    [ $(( kmcp_cs / 100 + kmcp_wait )) -lt "$kmcp_end" ] || return 1
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
# The file of a queued record: start, o|e (a chunk of stdout|stderr) or post (the result).
kmcp_file() {
  case $1 in
    start) kmcp_f="$d/start" ;;
    o|e) kmcp_f="$d/chunk.$1" ;;
    *) kmcp_f="$d/post" ;;
  esac
}
# Ends the early uploader's input (fd 7): it then sends what kmcp_flush wrote there, or
# exits at once. (It is stage 1's child, not this shell's: `wait` cannot wait for it; its
# status codes on fd 8 end when it exits.)
kmcp_upwait() {
  exec 7>&-
  kmcp_ul=
}
# kmcp_ok: how many of the status codes on stdin (one a line, in order) are 2xx before the
# first other one; kmcp_got: whether there was any.
kmcp_oks() {
  kmcp_got=
  while read -r kmcp_code; do
    kmcp_got=1
    case $kmcp_code in
      2??) kmcp_ok=$((kmcp_ok + 1)) ;;
      *) break ;;
    esac
  done
}
# Sends the queued records named by the arguments, in order, the result last: with curl in
# one process over one connection (`next` between them; --fail-early stops at the first
# refusal; the early uploader when it runs), then one by one (with retries) whatever it did
# not deliver, or everything when there is no curl.
kmcp_flush() {
  if [ -n "$kmcp_ul" ] || command -v curl >/dev/null 2>&1; then
    case $d in
      *[\"\\]*) ;;
      *)
        kmcp_cfg=
        for kmcp_w; do
          kmcp_file "$kmcp_w"
          kmcp_u=$kmcp_sput
          kmcp_k=$kmcp_sput_key
          [ "$kmcp_w" = post ] && kmcp_u=$kmcp_url && kmcp_k=$kmcp_key
          [ -z "$kmcp_cfg" ] || kmcp_cfg="$kmcp_cfg${kmcp_nl}next$kmcp_nl"
          kmcp_cfg="${kmcp_cfg}url = \"$kmcp_u\"${kmcp_nl}header = \"X-Relay-Key: $kmcp_k\"${kmcp_nl}header = \"Content-Type: application/octet-stream\"${kmcp_nl}data-binary = \"@$kmcp_f\"${kmcp_nl}output = \"/dev/null\"${kmcp_nl}write-out = \"%{http_code}\\n\"${kmcp_nl}fail"
        done
        kmcp_ok=0
        kmcp_got=
        if [ -n "$kmcp_ul" ]; then
          printf '%s\n' "$kmcp_cfg" >&7
          kmcp_upwait
          # Its status codes up to the first failure, or to EOF (it has exited then).
          kmcp_oks <&8
          exec 8<&-
        fi
        # No code at all: the early uploader was not there (or died before it sent anything):
        # one curl of its own.
        if [ -z "$kmcp_got" ] && command -v curl >/dev/null 2>&1; then
          : > "$d/codes"
          curl -K - -sS --fail-early > "$d/codes" 2>/dev/null <<KMCP_CFG
$kmcp_cfg
KMCP_CFG
          kmcp_oks < "$d/codes"
        fi
        # (Never more than the records: one code per request.)
        [ "$kmcp_ok" -le $# ] && shift "$kmcp_ok"
        ;;
    esac
  fi
  [ -z "$kmcp_ul" ] || kmcp_upwait
  for kmcp_w; do
    kmcp_file "$kmcp_w"
    case $kmcp_w in
      post) kmcp_post "$kmcp_f" ;;
      start) kmcp_chunk_post "$kmcp_f" ;;
      *) kmcp_http chunk "$kmcp_f" > /dev/null ;;
    esac
  done
}
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

/// The work directory of the exec, read, write and list scripts (after the stale cleaner): a
/// `mktemp` name, locked and renamed by `kmcp_lock`, removed on exit.
const WORKDIR: &str = r#"kmcp_clean "$kmcp_base" kmcp
kmcp_new=$(mktemp -d "$kmcp_base/kmcp-new.XXXXXX") || exit 1
kmcp_lock "$kmcp_new"
kmcp_traps
"#;

/// Stage 1 of the streaming script (before it re-executes `sh` with stage 2): starts the
/// uploader of its `kmcp_flush`, first of all, so that curl's start-up (~4–8 ms of loading
/// its libraries, the longest step before the first record can go) overlaps stage 2's own
/// start, the work directory's `mkdir` and the command: `curl -K -` reading its configuration
/// from the FIFO `<work dir>.cfg`, which only the wrapper holds open for writing (fd 7,
/// closed in every background child; `exec` keeps it), and writing its status codes into the
/// FIFO `<work dir>.codes`, read back on fd 8 (a few bytes: the pipe holds them; EOF once
/// curl exits, its only writer). Both are made by one `mkfifo` beside the work directory
/// `$TMPDIR/kmcp-new.<job>` (the same `kmcp_base` rule as stage 2) that is not there yet:
/// `kmcp-new.*` files, which every cleaner (also older servers') removes only when old, and
/// kmcp_cleanup removes with the directory (each name only if it is a FIFO of this user, not
/// a link: also the one `mkfifo` made when it failed on the other, a planted name). curl
/// blocks until kmcp_flush writes the configuration and closes fd 7, or gets EOF and exits at
/// once (no URL) when the wrapper exits or dies. Stage 2 gets curl's pid and the FIFOs'
/// prefix as `$1` and `$2` (empty pid: no early uploader: no curl, a name with `"` or `\`,
/// a failed `mkfifo`, or opens that failed, e.g. out of descriptors: `command exec` then
/// leaves the wrapper running, on the uploaders of kmcp_flush's fallback).
const EARLY_UPLOADER: &str = r#"kmcp_ul=
# Unsets every input of the wrapper (KMCP_E_<name> for each name in KMCP_ENV, then the rest,
# listed by `text`).
kmcp_unset_inputs() {
  for kmcp_n in ${KMCP_ENV-}; do
    case $kmcp_n in ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;; esac
    unset "KMCP_E_$kmcp_n"
  done
  unset KMCP_INPUTS
}
kmcp_ff=${TMPDIR:-/tmp}
{ [ -d "$kmcp_ff" ] && [ -w "$kmcp_ff" ]; } || kmcp_ff=/tmp
kmcp_ff="$kmcp_ff/kmcp-new.${KMCP_JOB-}"
case ${KMCP_JOB-} in ''|*[!0-9A-Za-z_-]*) kmcp_ff= ;; esac
case $kmcp_ff in *[\"\\]*) kmcp_ff= ;; esac
if [ -n "$kmcp_ff" ] && command -v curl >/dev/null 2>&1 &&
  mkfifo -m 600 "$kmcp_ff.cfg" "$kmcp_ff.codes" 2>/dev/null &&
  # Read-write first: no open then waits for the other end. Once fd 4 is closed, only curl
  # writes into the codes FIFO.
  { command exec 7<> "$kmcp_ff.cfg" 6< "$kmcp_ff.cfg" 4<> "$kmcp_ff.codes" 8< "$kmcp_ff.codes"; } 2>/dev/null; then
  # Without the wrapper's inputs in its environment (stage 2 unsets them only later): the
  # subshell drops them and becomes curl (no extra process).
  (
    kmcp_unset_inputs
    exec curl -K - -sS --fail-early <&6 >&4 2>/dev/null 4>&- 6<&- 7>&- 8<&-
  ) &
  kmcp_ul=$!
  exec 4>&- 6<&-
else
  exec 4>&- 6<&- 7>&- 8<&-
fi
"#;

/// Turns `$kmcp_env` (names) and `KMCP_E_<name>` (values) into `NAME=value` positional
/// parameters for `env`, unsetting the carriers so the command does not inherit them.
const USER_ENV: &str = r#"set --
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
kmcp_which_sh
kmcp_timeout_mode
[ $# -gt 0 ] && set -- env "$@"
set -- "$@" "$kmcp_sh" -c -- "$kmcp_cmd"
case $kmcp_tk in
  k) set -- timeout -k 2 "$kmcp_timeout" "$@" ;;
  plain) set -- timeout "$kmcp_timeout" "$@" ;;
esac
mkfifo "$d/o" "$d/e" || exit 1
kmcp_reader "$d/o" "$d/out"
r1=$!
kmcp_reader "$d/e" "$d/err"
r2=$!
kmcp_readers=1
kmcp_clock
t0=$kmcp_cs
rc=0
if [ -n "$kmcp_cwd" ] && ! cd "$kmcp_cwd" 2>/dev/null; then
  printf 'kasm-mcp: cannot change to working_dir %s\n' "$kmcp_cwd" > "$d/e"
  : > "$d/o"
  rc=1
elif [ -n "$kmcp_tk" ]; then
  "$@" > "$d/o" 2> "$d/e" < /dev/null 9<&- &
  pid=$!
  kmcp_cancel_watch "$pid"
  wait "$pid"
  rc=$?
else
  "$@" > "$d/o" 2> "$d/e" < /dev/null 9<&- &
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
  kill -KILL "$wd" 2>/dev/null
fi
# KILL: a TERM could reach these subshells before they reset the wrapper's traps (see
# kmcp_cleanup); neither has anything to clean up.
[ -n "$kmcp_cw" ] && kill -KILL "$kmcp_cw" 2>/dev/null
kmcp_clock
t1=$kmcp_cs
to=0
if [ -e "$d/timedout" ]; then
  to=1
elif [ $((t1 - t0)) -ge $((kmcp_timeout * 100)) ]; then
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
[ -n "$kmcp_fine" ] && dur=$(( (t1 - t0) * 10 ))
for f in out err; do
  if [ -f "$d/$f" ]; then cat "$d/$f" > "$d/$f.snap"; else : > "$d/$f.snap"; fi
done
{
  printf 'EXEC %s %s %s %s %s %s\n' "$rc" "$to" "$dur" "$(wc -c < "$d/out.snap")" "$(wc -c < "$d/err.snap")" "$incomplete"
  cat "$d/out.snap" "$d/err.snap"
} > "$d/post"
kmcp_post "$d/post"
"#;

/// Runs the command in a process group of its own (`setsid`, a session of its own; without
/// it GNU `timeout` makes one; so its process group id is its pid and a later exec can signal
/// the whole group) with stdout and stderr written to spill files in
/// `$kmcp_base/kmcp-job.<job id>/` (mode 0700), which keep the whole output (and, once it
/// ends, the command's `exit_code`). It sends `START <g|p> <id> <spill dir>` to the stream
/// ticket (`g`: a process group id, once `/proc` shows the pid leads its group; `p`: a single
/// pid when neither GNU `timeout` nor `setsid` is there, or the pid never led a group), then
/// every `$kmcp_interval` seconds, per stream that grew, one `CHUNK <seq> <o|e> <offset>`
/// frame with at most `$kmcp_chunk` of its newest bytes (output that grows faster is skipped
/// in the chunks, never in the files). When the command ends it sends the last chunks and
/// then the usual `EXEC` record (the first `$kmcp_cap` bytes of each file; `incomplete` = 1
/// when processes the command left behind still hold the files 3 s after it ended) to the
/// result ticket. A regular-file `timeout` (GNU's) runs the command and stays its watchdog
/// should the script die; the script's own watchdog only kills the group if `timeout` does
/// not end it. Without one, under `setsid`, the script's own watchdog times the command out
/// (TERM to the group at `$kmcp_timeout` s, KILL 2 s later; the result says 124, timed out).
///
/// The fast path (a command that ends within its first nap of 0.05 s): the script is the
/// command's parent and waits for it (`wait`, which a nap timer's SIGUSR1 interrupts), so it
/// wakes the moment the command ends, with no process in between; `START`, the last chunks
/// and `EXEC` then go in one `curl` run, started first of all, by stage 1 (`EARLY_UPLOADER`:
/// with `mkfifo` for its configuration and status codes, beside the work directory) so that
/// its start-up overlaps stage 2, the `mkdir` and the command. For `true` the wrapper starts
/// `mkfifo`, `curl` (waiting for its configuration), `mkdir`, `timeout` → `sh` (which runs
/// `true` itself; `setsid` → `sh` when `timeout` is not a regular file but `setsid` is there;
/// a linked `timeout` alone after a probe of its `-k` otherwise), at most one nap timer (a fork
/// running `sleep`; none when the command has already ended by then) and `rm`; output adds one `wc`
/// and a `tail`/`cat` per stream that has some. The work directory is locked (`flock`) only
/// when the command outlives the first nap.
const STREAM_BODY: &str = r#"kmcp_spill="$kmcp_base/kmcp-job.$kmcp_job"
# The work directory keeps its kmcp-new.* name for its whole life (no rename): every cleaner,
# this one's and those of older servers' wrappers in the same container, leaves a young one
# alone while it has no `held` file, and it is locked (kmcp_hold) only once the command
# outlives the first nap, so a command that ends at once costs no `flock` or `mv`.
d="$kmcp_base/kmcp-new.$kmcp_job"
# No -p: both must be new, so a directory someone else made under the same name is never used.
if ! mkdir -m 700 "$kmcp_spill" "$d" 2>/dev/null; then
  kmcp_rm
  exit 1
fi
exec 9<"$d"
kmcp_traps
[ -d "$kmcp_spill" ] || kmcp_fail spill_failed
: > "$kmcp_spill/stdout" && : > "$kmcp_spill/stderr" || kmcp_fail spill_failed
kmcp_seq=0
# Sizes of the files $1 and $2 into kmcp_lo and kmcp_le (one `wc`, none when both are empty).
kmcp_sizes() {
  kmcp_lo=0
  kmcp_le=0
  [ -s "$1" ] || [ -s "$2" ] || return 0
  wc -c "$1" "$2" > "$d/sizes" 2>/dev/null
  { read -r kmcp_lo kmcp_x; read -r kmcp_le kmcp_x; } < "$d/sizes" 2>/dev/null
  case $kmcp_lo in ''|*[!0-9]*) kmcp_lo=0 ;; esac
  case $kmcp_le in ''|*[!0-9]*) kmcp_le=0 ;; esac
}
# Writes the chunk of file $1 (stream $2) past offset $3 up to its size $4 into $d/chunk.$2,
# at most $kmcp_chunk of the newest bytes; fails when there is nothing new. $5 = 1: the file
# may still grow, cut it at $4.
kmcp_chunk_file() {
  [ "$4" -gt "$3" ] || return 1
  kmcp_from=$3
  [ $(($4 - kmcp_from)) -gt "$kmcp_chunk" ] && kmcp_from=$(($4 - kmcp_chunk))
  kmcp_seq=$((kmcp_seq + 1))
  {
    printf 'CHUNK %s %s %s\n' "$kmcp_seq" "$2" "$kmcp_from"
    if [ "$5" = 1 ]; then
      tail -c +$((kmcp_from + 1)) "$1" | head -c $(($4 - kmcp_from))
    else
      tail -c +$((kmcp_from + 1)) "$1"
    fi
  } > "$d/chunk.$2"
}
# While the command runs: posts what file $1 (stream $2) gained past offset $3; kmcp_size is
# its size then.
kmcp_send() {
  [ -s "$1" ] || return 1
  { wc -c < "$1" > "$d/size" && read -r kmcp_size < "$d/size"; } 2>/dev/null || return 1
  case $kmcp_size in ''|*[!0-9]*) return 1 ;; esac
  kmcp_chunk_file "$1" "$2" "$3" "$kmcp_size" 1 || return 1
  kmcp_http chunk "$d/chunk.$2" > /dev/null
  return 0
}
kmcp_which_sh
# A regular-file `timeout` (GNU's, uutils') runs the command and makes its group itself: it
# stays the command's watchdog even when this script dies (kill_command, a stop, the OOM
# killer), and this script's watchdog only steps in 4 s after the timeout. Without one but
# with setsid (its pid becomes a process group id), the command runs under this script's own
# watchdog (kmcp_dog=1: TERM to the group at the timeout, KILL 2 s later; the result says
# 124 and timed out, also when the KILL was needed, where GNU timeout says 137). Else
# `timeout` (busybox's, a lone pid) or nothing, with the watchdog 4 s after the timeout.
kmcp_ss=
kmcp_dog=
kmcp_timeout_mode quick
if [ -z "$kmcp_tg" ]; then
  if command -v setsid >/dev/null 2>&1; then
    kmcp_ss=setsid
    kmcp_dog=1
    kmcp_tk=
  elif [ -n "$kmcp_tk" ]; then
    kmcp_timeout_mode
  fi
fi
[ $# -gt 0 ] && set -- env "$@"
set -- "$@" "$kmcp_sh" -c -- "$kmcp_cmd"
case $kmcp_tk in
  k) set -- timeout -k 2 "$kmcp_timeout" "$@" ;;
  plain) set -- timeout "$kmcp_timeout" "$@" ;;
esac
kmcp_woke=
trap 'kmcp_woke=1' USR1
kmcp_pid=
# The command's exit status once it ended.
rc=
kmcp_clock
t0=$kmcp_cs
if [ -n "$kmcp_cwd" ] && ! cd "$kmcp_cwd" 2>/dev/null; then
  printf 'kasm-mcp: cannot change to working_dir %s\n' "$kmcp_cwd" > "$kmcp_spill/stderr"
  rc=1
  echo 1 > "$kmcp_spill/exit_code"
else
  # This shell's own child, waited for by kmcp_nap (no process in between: setsid runs in it
  # without a fork, since a background child of a shell without job control leads no process
  # group; GNU timeout calls setpgid(0, 0): so its pid becomes the group id). Only the
  # command holds the spill files.
  $kmcp_ss "$@" > "$kmcp_spill/stdout" 2> "$kmcp_spill/stderr" < /dev/null 7>&- 8<&- 9<&- &
  kmcp_pid=$!
  echo "$kmcp_pid" > "$d/pgid"
fi
# The stale cleaner, while the command runs (not before it: nothing it does is needed first).
kmcp_clean "$kmcp_base" kmcp 7>&- 8<&-
# Waits for the command for at most $1 seconds: a timer (a subshell: `sleep`, then SIGUSR1 to
# this shell; a `sleep` without fractions fails at once: then whole seconds) interrupts the
# `wait` (it returns at a trapped signal). When the command ended, rc is its exit status, kept
# beside the output too (so a command that removes the work directory still has it
# reported), and the timer is stopped (KILL, not TERM: a TERM that lands before the subshell
# has reset this shell's traps would run the TERM trap there, see kmcp_cleanup; its `sleep`
# ends by itself). A `wait` interrupted by the timer returns more than 128, as does one for
# a command that ended by a signal (or exit 129…255) just as the timer's signal came: then
# the command's process decides (a second `wait` gives the status of one that has ended).
kmcp_nap() {
  kmcp_woke=
  kmcp_tm=
  # Ended already (a zombie): no timer.
  if ! { { read -r kmcp_st < "/proc/$kmcp_pid/stat"; } 2>/dev/null && case ${kmcp_st##*) } in Z*) true ;; *) false ;; esac; }; then
    # It signals again every second until it is stopped: a signal that lands before this
    # shell is inside `wait` only sets kmcp_woke, and `wait` would then block until the
    # command ends (no START, no chunks, no watchdog); the next one ends it.
    ( { sleep "$1" || sleep 1; } 2>/dev/null; while kill -USR1 "$$" 2>/dev/null; do sleep 1 2>/dev/null || exit; done ) > /dev/null 2>&1 < /dev/null 7>&- 8<&- 9<&- &
    kmcp_tm=$!
  fi
  wait "$kmcp_pid"
  kmcp_ws=$?
  if [ -n "$kmcp_woke" ] && [ "$kmcp_ws" -gt 128 ]; then
    kmcp_tm=
    # Interrupted while the command runs (its process is there and not a zombie)?
    if { read -r kmcp_st < "/proc/$kmcp_pid/stat"; } 2>/dev/null; then
      case ${kmcp_st##*) } in Z*) ;; *) return 0 ;; esac
    elif [ ! -d /proc/self ] && kill -0 "$kmcp_pid" 2>/dev/null; then
      return 0
    fi
    # It has ended: the status, now, before any fork (a new job may take the slot of one
    # whose status `wait` has returned).
    wait "$kmcp_pid"
    kmcp_ws=$?
  fi
  rc=$kmcp_ws
  # Ended by the watchdog (see kmcp_watch).
  [ "$to" = 1 ] && [ -n "$kmcp_dog" ] && rc=124
  [ -z "$kmcp_tm" ] || kill -KILL "$kmcp_tm" 2>/dev/null
  kmcp_tm=
  { echo "$rc" > "$kmcp_spill/exit_code"; } 2>/dev/null
}
kmcp_kind_id=p
[ -n "$kmcp_ss$kmcp_tg" ] && kmcp_kind_id=g
pg=-
# Whether pid $1 leads its own process group (pgrp, after the state and the ppid that follow
# the `)` of the name in /proc/<pid>/stat): setsid or timeout makes it one only after its
# exec. Yes also when it is gone (it ended: nothing left to signal) or without /proc.
kmcp_leads() {
  { read -r kmcp_st < "/proc/$1/stat"; } 2>/dev/null || return 0
  # shellcheck disable=SC2086
  set -- "$1" ${kmcp_st##*) }
  [ "${4:-}" = "$1" ]
}
# The START record into $d/start: the group id once the command's pid leads its group; $1 =
# last (no more waiting): a pid that does not is reported as a lone pid.
kmcp_start() {
  if [ "$pg" = - ] && [ -n "$kmcp_pid" ]; then
    kmcp_p=$kmcp_pid
    if [ "$kmcp_kind_id" = p ] || kmcp_leads "$kmcp_p"; then
      pg=$kmcp_p
    elif [ "${1:-}" = last ]; then
      pg=$kmcp_p
      kmcp_kind_id=p
    fi
  fi
  printf 'START %s %s %s\n' "$kmcp_kind_id" "$pg" "$kmcp_spill" > "$d/start"
}
kmcp_kill() {
  case $pg in ''|-|*[!0-9]*) return ;; esac
  if [ "$kmcp_kind_id" = g ]; then kill "-$1" "-$pg" 2>/dev/null; else kill "-$1" "$pg" 2>/dev/null; fi
}
so=0
se=0
to=0
kmcp_sent=
# The watchdog: TERM to the command at its timeout (4 s later when `timeout` runs it), KILL
# 2 s after that (kmcp_kat: when). kmcp_due: centiseconds from now to its next step, which
# ends the nap before it (kmcp_naplen); kmcp_ics: the interval in centiseconds.
kmcp_grace=4
[ -n "$kmcp_dog" ] && kmcp_grace=0
kmcp_kat=
kmcp_ics=100
case $kmcp_interval in
  [0-9]*.[0-9][0-9][0-9]) kmcp_ics=$(( ${kmcp_interval%%.*} * 100 + 1${kmcp_interval#*.} / 10 - 100 )) ;;
esac
kmcp_watch() {
  if [ "$to" = 0 ] && [ $((kmcp_cs - t0)) -ge $(( (kmcp_timeout + kmcp_grace) * 100 )) ]; then
    to=1
    # The group, or the lone pid when it never led one (kmcp_kill needs pg).
    [ "$pg" = - ] && kmcp_start last
    kmcp_kill TERM
    kmcp_kat=$((kmcp_cs + 200))
  elif [ -n "$kmcp_kat" ] && [ "$kmcp_cs" -ge "$kmcp_kat" ]; then
    kmcp_kat=
    kmcp_kill KILL
  fi
}
# The next nap's length: the interval, or less when the watchdog's next step comes first.
kmcp_naplen() {
  kmcp_nl2=$kmcp_interval
  [ -n "$kmcp_fine" ] || return 0
  if [ "$to" = 0 ]; then
    kmcp_due=$((t0 + (kmcp_timeout + kmcp_grace) * 100 - kmcp_cs))
  elif [ -n "$kmcp_kat" ]; then
    kmcp_due=$((kmcp_kat - kmcp_cs))
  else
    return 0
  fi
  [ "$kmcp_due" -gt 0 ] || kmcp_due=1
  [ "$kmcp_due" -lt "$kmcp_ics" ] && kmcp_nl2="$((kmcp_due / 100)).$((kmcp_due % 100 / 10))$((kmcp_due % 10))"
  return 0
}
# The first nap is short: START (the group id that kill_command and a cancelled call need)
# is late by at most that much, and a command that ends within it costs one request.
kmcp_first=0.05
# Until the command ends.
while [ -z "$rc" ]; do
  if [ -n "$kmcp_first" ]; then
    kmcp_nap "$kmcp_first"
  else
    kmcp_clock
    kmcp_naplen
    kmcp_nap "$kmcp_nl2"
  fi
  kmcp_first=
  # Ended during the first nap: START goes with the result.
  [ -z "$kmcp_sent" ] && [ -n "$rc" ] && break
  kmcp_clock
  if [ -z "$kmcp_sent" ]; then
    # START once the group id is known (or after 5 s without it).
    kmcp_late=
    [ $((kmcp_cs - t0)) -ge 500 ] && kmcp_late=last
    kmcp_start "$kmcp_late"
    if [ "$pg" != - ] || [ -n "$kmcp_late" ]; then
      # The command outlived the first nap: lock the work directory now, before START's
      # upload (whose retries may outlast the stale age); from then on the cleaner of another
      # run removes it as soon as this wrapper is gone.
      kmcp_hold "$d"
      kmcp_chunk_post "$d/start"
      kmcp_sent=1
    fi
  fi
  kmcp_send "$kmcp_spill/stdout" o "$so" && so=$kmcp_size
  kmcp_send "$kmcp_spill/stderr" e "$se" && se=$kmcp_size
  kmcp_watch
done
kmcp_clock
t1=$kmcp_cs
# Processes the command left behind that still hold the spill files (any fd of any process
# this user may inspect).
kmcp_held() {
  for kmcp_h in /proc/[0-9]*/fd/[0-9]*; do
    if [ "$kmcp_h" -ef "$kmcp_spill/stdout" ] || [ "$kmcp_h" -ef "$kmcp_spill/stderr" ]; then
      return 0
    fi
  done
  return 1
}
incomplete=0
i=0
while kmcp_held; do
  if [ "$i" -ge 30 ]; then
    incomplete=1
    break
  fi
  sleep 0.1 2>/dev/null || sleep 1
  i=$((i + 1))
done
kmcp_clock
if [ $((kmcp_cs - t0)) -ge $((kmcp_timeout * 100)) ]; then
  case "$rc" in 124|137|143) to=1 ;; esac
fi
dur=-
[ -n "$kmcp_fine" ] && dur=$(( (t1 - t0) * 10 ))
if [ ! -d "$d" ]; then
  kmcp_post "$d/post"
  exit 0
fi
q=
if [ -z "$kmcp_sent" ]; then
  kmcp_start last
  q=start
fi
kmcp_sizes "$kmcp_spill/stdout" "$kmcp_spill/stderr"
kmcp_chunk_file "$kmcp_spill/stdout" o "$so" "$kmcp_lo" "$incomplete" && q="$q o"
kmcp_chunk_file "$kmcp_spill/stderr" e "$se" "$kmcp_le" "$incomplete" && q="$q e"
if [ "$incomplete" = 1 ]; then
  # Writers are still there: the record comes from one snapshot of each file.
  head -c "$kmcp_cap" "$kmcp_spill/stdout" > "$d/out.snap"
  head -c "$kmcp_cap" "$kmcp_spill/stderr" > "$d/err.snap"
  kmcp_sizes "$d/out.snap" "$d/err.snap"
  {
    printf 'EXEC %s %s %s %s %s %s\n' "$rc" "$to" "$dur" "$kmcp_lo" "$kmcp_le" 1
    cat "$d/out.snap" "$d/err.snap"
  } > "$d/post"
else
  {
    # Exactly the measured bytes: a writer the holder check could not see (another user's
    # process, no /proc) may still append, and the header's sizes must match the body.
    [ "$kmcp_lo" -le "$kmcp_cap" ] || kmcp_lo=$kmcp_cap
    [ "$kmcp_le" -le "$kmcp_cap" ] || kmcp_le=$kmcp_cap
    printf 'EXEC %s %s %s %s %s %s\n' "$rc" "$to" "$dur" "$kmcp_lo" "$kmcp_le" 0
    [ "$kmcp_lo" -eq 0 ] || head -c "$kmcp_lo" "$kmcp_spill/stdout"
    [ "$kmcp_le" -eq 0 ] || head -c "$kmcp_le" "$kmcp_spill/stderr"
  } > "$d/post"
fi
# A timer's SIGUSR1 may still come: it must not interrupt the read of curl's status codes
# (a trapped signal ends `read`). The default action would end the script: ignore it.
trap '' USR1
# shellcheck disable=SC2086
kmcp_flush $q post
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
const DISPATCH_BODY: &str = r#"kmcp_sh=$(command -v sh) || kmcp_sh=/bin/sh
if [ -n "$kmcp_cwd" ]; then cd "$kmcp_cwd" || exit 1; fi
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
    let workdir = if matches!(script, Script::Stream) {
        ""
    } else {
        WORKDIR
    };
    let stage2 = format!("{}{PRELUDE}{workdir}{user_env}{body}", prologue(script));
    // The scripts contain no NUL, so quoting cannot fail; fall back to a harmless no-op.
    let quoted = shlex::try_quote(&stage2).unwrap_or_else(|_| "true".into());
    let (early, args) = if matches!(script, Script::Stream) {
        (early_uploader(script), r#" "$kmcp_ul" "$kmcp_ff""#)
    } else {
        (String::new(), "")
    };
    format!(
        "kmcp_t=${{{TICKETS_ENV}-}}\nunset {TICKETS_ENV}\n{early}exec sh -c {quoted} kasm-mcp-wrapper{args} 3<<KMCP_TICKETS_END\n$kmcp_t\nKMCP_TICKETS_END\n"
    )
}

/// [`EARLY_UPLOADER`] with the names of `script`'s inputs in its `unset`.
fn early_uploader(script: Script) -> String {
    let names: Vec<&str> = script.vars().iter().map(|var| var.env()).collect();
    EARLY_UPLOADER.replace("unset KMCP_INPUTS", &format!("unset {}", names.join(" ")))
}

/// The prefix of the variables carrying user environment values (for the input renderer).
pub fn user_env_var(name: &str) -> String {
    format!("{USER_ENV_PREFIX}{name}")
}
