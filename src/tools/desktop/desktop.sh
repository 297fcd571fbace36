# kasm-mcp desktop script: constant text; every input arrives in KD_* environment variables
# (validated by the server), never in this text. Writes SHOT/CURSOR/WIN/FOCUS records to
# stdout; on failure one `KDERR code detail` line to stderr and exit status 3.
set -f
export DISPLAY="$KD_DISPLAY"
t=$(mktemp -d 2>/dev/null || mktemp -d -t kd.XXXXXX) || exit 70
trap 'rm -rf "$t"' EXIT
kd_die() {
  printf 'KDERR %s %s\n' "$1" "${2:-}" >&2
  exit 3
}
kd_need() {
  command -v "$1" >/dev/null 2>&1 || kd_die missing "$1 $2"
}
case "$KD_DISPLAY" in
  :*)
    n=${KD_DISPLAY#:}
    n=${n%%.*}
    [ -S "/tmp/.X11-unix/X$n" ] || kd_die no_display "$KD_DISPLAY"
    ;;
esac
# Run an X client with its stderr kept; a display that cannot be opened is "no display".
kd_x() {
  "$@" 2>"$t/err" && return 0
  if grep -qiE "open display|open X server|open the display|t open display|cannot connect" "$t/err"; then
    kd_die no_display "$KD_DISPLAY"
  fi
  kd_die failed "$1: $(head -c 400 "$t/err" | tr '\n\t' '  ')"
}
kd_sleep_ms() {
  sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}
# Scaled size SW x SH of a W x H screen: the longer side at most KD_MAX.
kd_scale() {
  l=$W
  [ "$H" -gt "$l" ] && l=$H
  if [ "$l" -gt "$KD_MAX" ]; then
    SW=$((W * KD_MAX / l))
    SH=$((H * KD_MAX / l))
  else
    SW=$W
    SH=$H
  fi
  [ "$SW" -ge 1 ] || SW=1
  [ "$SH" -ge 1 ] || SH=1
}
kd_geometry() {
  if command -v xdotool >/dev/null 2>&1; then
    kd_x xdotool getdisplaygeometry >"$t/geo"
    read -r W H <"$t/geo"
  elif command -v xwininfo >/dev/null 2>&1; then
    kd_x xwininfo -root >"$t/geo"
    W=$(sed -n 's/^ *Width: *//p' "$t/geo")
    H=$(sed -n 's/^ *Height: *//p' "$t/geo")
  else
    kd_die missing "xdotool xdotool"
  fi
  kd_scale
}
# Scaled point $1,$2 -> real RX,RY (the centre of the real pixels it stands for).
kd_real() {
  if [ "$1" -ge "$SW" ] || [ "$2" -ge "$SH" ]; then
    kd_die out_of_range "$1 $2 $SW $SH"
  fi
  RX=$(((2 * $1 + 1) * W / (2 * SW)))
  RY=$(((2 * $2 + 1) * H / (2 * SH)))
  [ "$RX" -lt "$W" ] || RX=$((W - 1))
  [ "$RY" -lt "$H" ] || RY=$((H - 1))
}
kd_move() {
  if [ -n "${KD_X:-}" ]; then
    kd_real "$KD_X" "$KD_Y"
    kd_x xdotool mousemove "$RX" "$RY"
  fi
}
kd_shot() {
  if command -v import >/dev/null 2>&1; then
    kd_x import -silent -window root "png:$t/full.png"
  elif command -v xwd >/dev/null 2>&1; then
    kd_need convert imagemagick
    kd_x xwd -root -silent -out "$t/full.xwd"
    kd_x convert "xwd:$t/full.xwd" "png:$t/full.png"
  else
    kd_die missing "import imagemagick"
  fi
  kd_need identify imagemagick
  kd_x identify -format '%w %h\n' "$t/full.png" >"$t/size"
  read -r W H <"$t/size"
  kd_scale
  kd_x convert "$t/full.png" -strip -resize "${SW}x${SH}!" -quality 80 "$KD_FMT:$t/shot"
  printf 'SHOT %s %s %s %s %s\n' "$W" "$H" "$SW" "$SH" "$(wc -c <"$t/shot" | tr -d ' ')"
  cat "$t/shot"
}
kd_wmctrl() {
  command -v wmctrl >/dev/null 2>&1 && wmctrl "$@" >"$t/wm" 2>/dev/null
}
kd_focus() {
  if command -v xdotool >/dev/null 2>&1 && xdotool getwindowfocus >"$t/focus" 2>/dev/null; then
    printf 'FOCUS %s\n' "$(cat "$t/focus")"
  fi
}
kd_list() {
  kd_geometry
  printf 'SCREEN %s %s %s %s\n' "$W" "$H" "$SW" "$SH"
  if kd_wmctrl -lGx; then
    while read -r id desk x y w h class host title; do
      printf 'WIN\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$x" "$y" "$w" "$h" "$class" "$title"
    done <"$t/wm"
  else
    kd_need xdotool xdotool
    xdotool search --onlyvisible --name . >"$t/ids" 2>"$t/err"
    if grep -qiE "open display|t open display" "$t/err"; then
      kd_die no_display "$KD_DISPLAY"
    fi
    while read -r id; do
      [ -n "$id" ] || continue
      name=$(xdotool getwindowname "$id" 2>/dev/null)
      name=$(printf '%s' "$name" | tr '\t\n' '  ')
      xdotool getwindowgeometry --shell "$id" >"$t/g" 2>/dev/null || continue
      x=$(sed -n 's/^X=//p' "$t/g")
      y=$(sed -n 's/^Y=//p' "$t/g")
      w=$(sed -n 's/^WIDTH=//p' "$t/g")
      h=$(sed -n 's/^HEIGHT=//p' "$t/g")
      class=
      if command -v xprop >/dev/null 2>&1; then
        class=$(xprop -id "$id" WM_CLASS 2>/dev/null | sed -n 's/^WM_CLASS[^=]*= "\([^"]*\)", "\([^"]*\)".*/\1.\2/p')
      fi
      printf 'WIN\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$x" "$y" "$w" "$h" "$class" "$name"
    done <"$t/ids"
  fi
  kd_focus
}
kd_window() {
  if ! kd_wmctrl -l; then
    kd_need xdotool xdotool
  fi
  if command -v xdotool >/dev/null 2>&1; then
    xdotool getwindowname "$KD_WID" >/dev/null 2>&1 || kd_die no_window "$KD_WID"
  fi
}
case "$KD_OP" in
  shot)
    kd_shot
    exit 0
    ;;
  list)
    kd_list
    exit 0
    ;;
  focus)
    kd_window
    if ! kd_wmctrl -i -a "$KD_WID"; then
      kd_x xdotool windowraise "$KD_WID"
      kd_x xdotool windowfocus --sync "$KD_WID"
    fi
    kd_focus
    exit 0
    ;;
  close)
    kd_window
    kd_wmctrl -i -c "$KD_WID" || kd_x xdotool windowkill "$KD_WID"
    exit 0
    ;;
esac
kd_need xdotool xdotool
kd_geometry
case "$KD_OP" in
  mousemove) kd_move ;;
  click)
    kd_move
    kd_x xdotool click --repeat "$KD_REPEAT" --delay 80 "$KD_BUTTON"
    ;;
  down)
    kd_move
    kd_x xdotool mousedown 1
    ;;
  up)
    kd_move
    kd_x xdotool mouseup 1
    ;;
  drag)
    kd_real "$KD_X0" "$KD_Y0"
    kd_x xdotool mousemove "$RX" "$RY" mousedown 1
    kd_sleep_ms 100
    kd_real "$KD_X" "$KD_Y"
    kd_x xdotool mousemove "$RX" "$RY"
    kd_sleep_ms 100
    kd_x xdotool mouseup 1
    ;;
  scroll)
    kd_move
    kd_x xdotool click --repeat "$KD_REPEAT" --delay 40 "$KD_BUTTON"
    ;;
  type)
    printf '%s' "$KD_TEXT" >"$t/text"
    unset KD_TEXT
    kd_x xdotool type --delay 12 --file "$t/text"
    ;;
  key) kd_x xdotool key --delay 30 $KD_KEYS ;;
  hold)
    kd_x xdotool keydown $KD_KEYS
    kd_sleep_ms "$KD_MS"
    kd_x xdotool keyup $KD_KEYS
    ;;
  wait) kd_sleep_ms "$KD_MS" ;;
  cursor) ;;
  *) kd_die failed "unknown operation $KD_OP" ;;
esac
kd_x xdotool getmouselocation --shell >"$t/loc"
x=$(sed -n 's/^X=//p' "$t/loc")
y=$(sed -n 's/^Y=//p' "$t/loc")
# Real -> scaled: the scaled pixel the centre of the real one falls in (inverse of kd_real).
printf 'CURSOR %s %s %s %s\n' "$(((2 * x + 1) * SW / (2 * W)))" "$(((2 * y + 1) * SH / (2 * H)))" "$x" "$y"
printf 'SCREEN %s %s %s %s\n' "$W" "$H" "$SW" "$SH"
if [ "${KD_SHOT:-0}" = 1 ]; then
  kd_sleep_ms "$KD_SETTLE_MS"
  kd_shot
fi
