#!/usr/bin/env bash
# bench/ab.sh - two builds of corio compared in ONE run, alternating: before/after rounds of
# the echo servers (Lua 5.4, LuaJIT, C++; raw epoll in each round as the yardstick) and the
# 1M-timer benchmarks, so a change is judged against the same machine state.
#
#   bench/ab.sh BEFORE_ROOT AFTER_ROOT     # each a checkout with its build in build/
#
# Knobs: ROUNDS=3 CONNS="100 1000" DURATION=3 TIMERS=1000000; prints one line per run and,
# per (impl, conns), the median rps and krps per server core of each side.
set -u
BEFORE=$(cd "$1" && pwd) AFTER=$(cd "$2" && pwd)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED=${SHARED:-"$HERE/../shared/bench"}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"100 1000"}
DURATION=${DURATION:-3}
TIMERS=${TIMERS:-1000000}
LOADGEN="$SHARED/build/loadgen"
[ -x "$LOADGEN" ] && [ -x "$SHARED/build/echo_epoll" ] || make -s -C "$SHARED" build/loadgen build/echo_epoll >/dev/null 2>&1 ||
  { echo "cannot build $SHARED (loadgen, echo_epoll)" >&2; exit 2; }
OUT=$(mktemp)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
PORT=19700
PID=""
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; PID=""; }
trap 'stop; rm -f "$OUT"' EXIT

serve() {  # ROOT IMPL -> command line with {port}
  local env="LUA_PATH='$1/lua/?.lua;$1/lua/?/init.lua;;'"
  case $2 in
    lua) echo "env $env LUA_CPATH='$1/build/lua5.4/?.so;;' lua5.4 $1/bench/echo.lua {port}" ;;
    luajit) echo "env $env LUA_CPATH='$1/build/luajit/?.so;;' luajit $1/bench/echo.lua {port}" ;;
    cpp) echo "$1/build/bench/echo {port}" ;;
    epoll) echo "$SHARED/build/echo_epoll {port}" ;;
  esac
}

echo_run() {  # SIDE IMPL CONNS
  local root=$BEFORE cmd line
  [ "$1" = after ] && root=$AFTER
  PORT=$((PORT + 1))
  cmd=$(serve "$root" "$2")
  taskset -c 1 bash -c "exec ${cmd//\{port\}/$PORT}" >/dev/null 2>&1 &
  PID=$!
  for _ in $(seq 100); do [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && break; sleep 0.05; done
  line=$(taskset -c 0 "$LOADGEN" --host 127.0.0.1 --port "$PORT" --server-pid "$PID" --conns "$3" --size 64 \
         --duration "$DURATION" --warmup 1 2>/dev/null)
  stop
  echo "side=$1 impl=$2 conns=$3 $line" | tee -a "$OUT"
}

timer_run() {  # SIDE
  local root=$BEFORE
  [ "$1" = after ] && root=$AFTER
  echo "side=$1 $(taskset -c 1 "$root/build/bench/timers" "$TIMERS" | tail -1)" | tee -a "$OUT"
  echo "side=$1 $(cd "$root" && LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" \
    LUA_CPATH="$root/build/lua5.4/?.so;;" taskset -c 1 lua5.4 bench/timers.lua "$TIMERS" | tail -1)" | tee -a "$OUT"
}

for round in $(seq "$ROUNDS"); do
  # Alternate which side goes first, so neither always follows the other.
  if [ $((round % 2)) -eq 1 ]; then sides="before after"; else sides="after before"; fi
  for conns in $CONNS; do
    echo_run before epoll "$conns"
    for impl in lua luajit cpp; do for side in $sides; do echo_run "$side" "$impl" "$conns"; done; done
  done
  for side in $sides; do timer_run "$side"; done
done

python3 - "$OUT" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=([^\s]+)", line))
    if "rps" in kv:
        key = (kv["impl"], kv["conns"], kv["side"])
        cpu = float(kv.get("srv_cpu", "nan"))
        rows.setdefault(key, []).append((float(kv["rps"]), float(kv["rps"]) / 1000 / cpu if cpu > 0 else float("nan")))
    elif "ns_per_timer" in line or "cpu_ns_per_timer" in line:
        m = re.search(r"cpu_ns_per_timer=([\d.]+)", line)
        impl = kv.get("impl", kv.get("bench", "timers"))
        rows.setdefault((impl, "timers", kv["side"]), []).append((float(m.group(1)), float("nan")))
print("\nmedians (before -> after):")
for key in sorted({(i, c) for (i, c, _) in rows}):
    b, a = rows.get(key + ("before",)), rows.get(key + ("after",))
    def med(r, i): return statistics.median(x[i] for x in r) if r else float("nan")
    if key[1] == "timers":
        print(f"  {key[0]:>14} timers: {med(b,0):.0f} -> {med(a,0):.0f} ns/timer ({med(a,0)/med(b,0):.3f}x)")
    elif b and a:
        print(f"  {key[0]:>8} conns={key[1]:>4}: rps {med(b,0):.0f} -> {med(a,0):.0f} ({med(a,0)/med(b,0):.3f}x), "
              f"krps/core {med(b,1):.1f} -> {med(a,1):.1f} ({med(a,1)/med(b,1):.3f}x)")
    else:
        r = b or a
        print(f"  {key[0]:>8} conns={key[1]:>4}: rps {med(r,0):.0f}, krps/core {med(r,1):.1f} (yardstick)")
EOF
