#!/usr/bin/env bash
# bench/instructions.sh - user-space instructions per echoed message of corio's echo servers
# (Lua 5.4, LuaJIT, C++), counted by callgrind: repeatable whatever else the machine does, so
# two builds can be compared where wall-clock rates differ by more than the change.
#
#   bench/instructions.sh ROOT [ROOT...]    # each a checkout with its build in build/
#
# Knobs: CONNS=100 DURATION=4. Counting starts after the server is up and connected
# (callgrind_control -i on), so start-up is not counted.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED=${SHARED:-"$HERE/../shared/bench"}
CONNS=${CONNS:-100}
DURATION=${DURATION:-4}
LOADGEN="$SHARED/build/loadgen"
[ -x "$LOADGEN" ] || make -s -C "$SHARED" build/loadgen >/dev/null 2>&1 || { echo "cannot build loadgen" >&2; exit 2; }
PORT=19800
TMP=${KEEP:-$(mktemp -d)}; mkdir -p "$TMP"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT

count() {  # ROOT IMPL
  local root=$1 impl=$2 cmd out pid completed instr
  PORT=$((PORT + 1))
  export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
  case $impl in
    lua) export LUA_CPATH="$root/build/lua5.4/?.so;;"; cmd=(lua5.4 "$root/bench/echo.lua" "$PORT") ;;
    luajit) export LUA_CPATH="$root/build/luajit/?.so;;"; cmd=(luajit "$root/bench/echo.lua" "$PORT") ;;
    cpp) cmd=("$root/build/bench/echo" "$PORT") ;;
  esac
  out="$TMP/cg.$impl.$(basename "$root")"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "${cmd[@]}" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && break; sleep 0.05; done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  completed=$("$LOADGEN" --host 127.0.0.1 --port "$PORT" --conns "$CONNS" --size 64 --duration "$DURATION" \
              --warmup 0 2>/dev/null | grep -oE 'completed=[0-9]+' | cut -d= -f2)
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  instr=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  if [ -n "$completed" ] && [ -n "$instr" ] && [ "$completed" -gt 0 ]; then
    echo "root=$root impl=$impl messages=$completed instructions=$instr per_message=$((instr / completed))"
  else
    echo "root=$root impl=$impl FAIL"
  fi
}

for impl in lua luajit cpp; do
  for root in "$@"; do count "$(cd "$root" && pwd)" "$impl"; done
done
