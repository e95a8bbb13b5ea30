#!/usr/bin/env bash
# bench/run.sh - corio beside the peers of ../shared/bench in ONE run, then
# docs/performance.md. Run by `make bench` (which builds first); about 16 minutes.
#
#   bench/run.sh                 # everything
#   PEERS_ONLY=epoll,luv bench/run.sh   # fewer peers (corio's servers are always in)
#
# Knobs (environment): BUILD=build LUA=lua5.4 N_IDLE=10000 IDLE_SECS=10 LATENESS_N=10000 H2H_ROUNDS=2,
# DOC=docs/performance.md (empty: no doc), and run-peers.sh's own (DURATION, WARMUP, ...).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
N_IDLE=${N_IDLE:-10000}
IDLE_SECS=${IDLE_SECS:-10}
LATENESS_N=${LATENESS_N:-10000}
DOC=${DOC-docs/performance.md}
SHARED=${SHARED:-"$ROOT/../shared/bench"}
RES="$ROOT/$BUILD/bench/results/$(date -u +%Y%m%d-%H%M%S)"
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
mkdir -p "$RES/logs"
EXTRA="$RES/corio.txt"  # corio's own lines (timers, spawn, lateness, leases, memory, idle)
: > "$EXTRA"

export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/$BUILD/lua5.4/?.so;;"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
T0=$(date +%s)

{
  echo "uptime_before=$(uptime | sed 's/.*load average: //; s/ //g')"
  echo "nproc=$(nproc)"
} >> "$EXTRA"

LOADGEN="$SHARED/build/loadgen"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 20); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM
PORT=19400
start_server() {  # CMD with {port} [CPUS=$SERVER_CPU]
  PORT=$((PORT + 1))
  taskset -c "${2:-$SERVER_CPU}" bash -c "exec ${1//\{port\}/$PORT}" >>"$RES/logs/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- 1. echo servers: corio's beside the peers, through run-peers.sh ----
# The same echo.lua on LuaJIT too, as the peers have luv-luajit and copas-luajit rows.
ECHO_LUA="$LUA $ROOT/bench/echo.lua {port}"
ECHO_LUAJIT="env 'LUA_CPATH=$ROOT/$BUILD/luajit/?.so;;' luajit $ROOT/bench/echo.lua {port}"
ECHO_CPP="$ROOT/$BUILD/bench/echo {port}"
servers=(--server "corio-lua=$ECHO_LUA" --server "corio-luajit=$ECHO_LUAJIT" --server "corio-cpp=$ECHO_CPP"
         --server "corio-socketloop=$LUA $ROOT/bench/echo_socketloop.lua {port}")
only=()
if [ -n "${PEERS_ONLY:-}" ]; then only=(--only "corio-lua,corio-luajit,corio-cpp,corio-socketloop,$PEERS_ONLY"); fi
echo "== peers and corio echo (run-peers.sh)" >&2
RESULTS="$RES/peers" "$SHARED/run-peers.sh" "${servers[@]}" "${only[@]}" || { echo "run-peers.sh failed" >&2; exit 1; }

# ---- 1b. head to head: the servers the targets compare, interleaved, H2H_ROUNDS more times ----
# One row per server and config is at the mercy of a neighbour's burst on a 2-vCPU VM
# (+-10 % between rows); the targets are judged on the median of the run-peers.sh row and
# these rounds, each round running the compared servers back to back.
H2H_ROUNDS=${H2H_ROUNDS:-2}
h2h=("epoll|$SHARED/build/echo_epoll {port}" "asio|$SHARED/build/echo_asio {port}"
     "corio-lua|$ECHO_LUA" "corio-luajit|$ECHO_LUAJIT" "corio-cpp|$ECHO_CPP")
echo "== head to head, $H2H_ROUNDS rounds" >&2
for round in $(seq "$H2H_ROUNDS"); do
  for conns in 100 1000; do
    for s in "${h2h[@]}"; do
      if ! start_server "${s#*|}"; then echo "bench=h2h round=$round impl=${s%%|*} conns=$conns FAIL" >> "$EXTRA"; stop_server; continue; fi
      line=$(taskset -c "$LOADGEN_CPU" "$LOADGEN" --host 127.0.0.1 --port "$PORT" --server-pid "$SERVER_PID" \
             --conns "$conns" --size 64 --duration 3 --warmup 1 2>>"$RES/logs/h2h.loadgen.log")
      echo "bench=h2h round=$round impl=${s%%|*} $line" >> "$EXTRA"
      stop_server
    done
  done
done

# ---- 2. timers, spawn/switch, lateness (pinned like the peers' timers), leases ----
on_cpu() { taskset -c "$SERVER_CPU" "$@"; }
echo "== corio timers, spawn, lateness, leases" >&2
for n in 1000000 100000; do
  on_cpu "$BUILD/bench/timers" "$n" >> "$EXTRA" 2>>"$RES/logs/timers.log"
  on_cpu "$LUA" bench/timers.lua "$n" >> "$EXTRA" 2>>"$RES/logs/timers.log"
done
on_cpu "$BUILD/bench/spawn" 1000000 >> "$EXTRA" 2>>"$RES/logs/spawn.log"
on_cpu "$LUA" bench/spawn.lua 1000000 >> "$EXTRA" 2>>"$RES/logs/spawn.log"
on_cpu "$BUILD/bench/timer_lateness" "$LATENESS_N" 1000 | sed 's/^timer_lateness /timer_lateness impl=corio-cpp /' >> "$EXTRA"
on_cpu "$LUA" bench/timer_lateness.lua "$LATENESS_N" 1000 >> "$EXTRA"
# node-wide leases: not pinned, the contended row needs its second process on another CPU
"$BUILD/bench/lease" 1000000 >> "$EXTRA" 2>>"$RES/logs/lease.log"
on_cpu "$LUA" bench/lease.lua 1000000 >> "$EXTRA" 2>>"$RES/logs/lease.log"

# recurring timers: corio.resty.timer beside corio.every and luv (N_RECURRING timers, 1 s interval)
N_RECURRING=${N_RECURRING:-100000}
for impl in resty every luv; do
  on_cpu "$LUA" bench/recurring.lua "$impl" "$N_RECURRING" 4 >> "$EXTRA" 2>>"$RES/logs/recurring.log"
done

# ---- 2b. echo through corio.workers(2) beside one process, 1000 connections ----
# Not pinned: the workers may use both CPUs, and so does loadgen (it needs about one).
workers_line() {
  local name=$1 cmd=$2 line
  if ! start_server "$cmd" "0-$(( $(nproc) - 1 ))"; then echo "bench=workers impl=$name FAIL" >> "$EXTRA"; stop_server; return; fi
  line=$("$LOADGEN" --host 127.0.0.1 --port "$PORT" --conns 1000 --size 64 --duration 5 --warmup 1 \
         2>>"$RES/logs/workers.loadgen.log")
  echo "bench=workers impl=$name cpus=$(nproc) $line" >> "$EXTRA"
  stop_server
}
echo "== echo: corio.workers(2) beside one process" >&2
for round in 1 2; do
  workers_line "one-process" "$LUA $ROOT/bench/echo.lua {port}"
  workers_line "workers(2)" "$LUA $ROOT/bench/echo_workers.lua {port} 2"
done

# ---- 2c. luamqtt's clients on corio.ioloop beside luamqtt's own ioloop ----
# The real luamqtt: LUAMQTT_DIR (a source checkout), else a shallow clone for this run only
# (never committed). Without it, corio.ioloop hosts tests/lua/mqtt_contract.lua's clients
# and the luamqtt row says so.
echo "== luamqtt clients: corio.ioloop beside luamqtt's ioloop" >&2
LUAMQTT_DIR=${LUAMQTT_DIR:-}
if [ -z "$LUAMQTT_DIR" ] && timeout 60 git clone -q --depth 1 https://github.com/xHasKx/luamqtt "$RES/luamqtt" 2>>"$RES/logs/ioloop.log"; then
  LUAMQTT_DIR="$RES/luamqtt"
fi
MQTT_PATH="$ROOT/tests/lua/?.lua;$LUA_PATH"
[ -n "$LUAMQTT_DIR" ] && MQTT_PATH="$LUAMQTT_DIR/?.lua;$LUAMQTT_DIR/?/init.lua;$MQTT_PATH"
IOLOOP_ARGS=${IOLOOP_ARGS:-"100 30 40 0.5"}  # clients, idle seconds, messages, seconds between them
for impl in corio luamqtt; do
  # shellcheck disable=SC2086
  LUA_PATH="$MQTT_PATH" on_cpu "$LUA" bench/ioloop.lua "$impl" $IOLOOP_ARGS >> "$EXTRA" 2>>"$RES/logs/ioloop.log"
done

# ---- 2d. TLS: full handshakes per second, corio's server beside openssl s_server ----
# openssl s_time as the client (one connection after another, a new session each, the same
# certificates); the figure is connections / real seconds. Both servers pinned alike.
echo "== TLS handshakes: corio beside openssl s_server" >&2
CERTS="$RES/certs"
mkdir -p "$CERTS"
LUA_PATH="$ROOT/tests/lua/?.lua;$LUA_PATH" "$LUA" -e "require('tls_support').make('$CERTS')" >>"$RES/logs/tls.log" 2>&1
tls_line() {  # NAME CMD
  local name=$1 out n secs
  if ! start_server "$2"; then echo "bench=tls impl=$name FAIL" >> "$EXTRA"; stop_server; return; fi
  local t0 t1
  t0=$(date +%s.%N)  # s_time prints whole real seconds: time it here
  out=$(taskset -c "$LOADGEN_CPU" openssl s_time -connect "127.0.0.1:$PORT" -new -time "${TLS_SECS:-5}" \
        -CAfile "$CERTS/ca.pem" 2>>"$RES/logs/tls.log")
  t1=$(date +%s.%N)
  n=$(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' <<<"$out")
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  if [ -n "$n" ] && [ -n "$secs" ]; then
    echo "bench=tls impl=$name handshakes=$n secs=$secs per_s=$(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')" >> "$EXTRA"
  else
    echo "bench=tls impl=$name FAIL" >> "$EXTRA"
  fi
  stop_server
}
tls_line "corio-lua" "$LUA $ROOT/bench/echo.lua {port} $CERTS/server.pem $CERTS/server.key"
tls_line "openssl-s_server" "openssl s_server -quiet -accept 127.0.0.1:{port} -cert $CERTS/server.pem -key $CERTS/server.key"

# ---- 2e. TLS echo at 100 connections beside asio::ssl, with the plain-TCP figures ----
# bench/tls_loadgen (OpenSSL, one thread; loadgen's closed loop, each connection verifying
# the server against the run's CA) as the client of every row, --plain for the plain ones.
TLS_ROUNDS=${TLS_ROUNDS:-2}
tls_echo=("tls|corio-lua|$ECHO_LUA $CERTS/server.pem $CERTS/server.key"
          "tls|corio-luajit|$ECHO_LUAJIT $CERTS/server.pem $CERTS/server.key"
          "tls|corio-cpp|$ECHO_CPP $CERTS/server.pem $CERTS/server.key"
          "tls|asio|$BUILD/bench/tls_echo_asio {port} $CERTS/server.pem $CERTS/server.key"
          "plain|corio-lua|$ECHO_LUA" "plain|corio-cpp|$ECHO_CPP" "plain|asio|$SHARED/build/echo_asio {port}")
echo "== TLS echo, 100 connections, $TLS_ROUNDS rounds" >&2
for round in $(seq "$TLS_ROUNDS"); do
  for s in "${tls_echo[@]}"; do
    IFS='|' read -r mode name cmd <<<"$s"
    how=(--cafile "$CERTS/ca.pem"); [ "$mode" = plain ] && how=(--plain)
    if ! start_server "$cmd"; then echo "bench=tls_echo round=$round impl=$name FAIL" >> "$EXTRA"; stop_server; continue; fi
    line=$(taskset -c "$LOADGEN_CPU" "$BUILD/bench/tls_loadgen" --port "$PORT" --server-pid "$SERVER_PID" \
           --conns 100 --size 64 --duration "${TLS_SECS:-5}" --warmup 1 "${how[@]}" 2>>"$RES/logs/tls.log")
    echo "bench=tls_echo round=$round impl=$name ${line:-FAIL}" >> "$EXTRA"
    stop_server
  done
done

# ---- 2f. MQTT: corio's client, idle (1,000 clients) and under load beside libmosquitto ----
echo "== MQTT: idle clients, load beside libmosquitto" >&2
BUILD=$BUILD LUA=$LUA bench/mqtt.sh "$RES" "$EXTRA"

# ---- 3. memory per idle connection and idle CPU (N_IDLE connections) ----
# idle_line NAME CONNS SECS CMD: N connections, one echo each, then silence
idle_line() {
  local name=$1 conns=$2 secs=$3 cmd=$4 line
  if ! start_server "$cmd"; then echo "bench=idle impl=$name conns=$conns FAIL" >> "$EXTRA"; stop_server; return; fi
  line=$(taskset -c "$LOADGEN_CPU" "$LOADGEN" --host 127.0.0.1 --port "$PORT" --server-pid "$SERVER_PID" \
         --conns "$conns" --size 64 --duration "$secs" --warmup 1 --idle --connect-timeout 60 2>>"$RES/logs/idle.loadgen.log")
  echo "bench=idle impl=$name $line" >> "$EXTRA"
  stop_server
}
echo "== corio memory per idle connection, idle CPU" >&2
for s in "corio-lua|$ECHO_LUA" "corio-cpp|$ECHO_CPP"; do
  idle_line "${s%%|*}" 1 1 "${s#*|}"
  idle_line "${s%%|*}" "$N_IDLE" 1 "${s#*|}"
done
idle_line "corio-lua+timers" "$N_IDLE" "$IDLE_SECS" "$LUA $ROOT/bench/idle.lua {port} $N_IDLE"
idle_line "corio-cpp+timers" "$N_IDLE" "$IDLE_SECS" "$ECHO_CPP $N_IDLE"

echo "uptime_after=$(uptime | sed 's/.*load average: //; s/ //g')" >> "$EXTRA"
echo "total_s=$(( $(date +%s) - T0 ))" >> "$EXTRA"

# ---- 4. the report ----
if [ -n "$DOC" ]; then
  python3 bench/report.py "$RES" > "$DOC" || exit 1
  echo "wrote $DOC (raw: $RES)" >&2
fi
python3 bench/report.py --summary "$RES"
