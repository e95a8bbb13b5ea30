#!/usr/bin/env bash
# bench/mqtt.sh RES EXTRA - the MQTT rows of bench/run.sh (also runnable alone): corio's client
# against a local mosquitto, pinned to CPU 1 (mosquitto to CPU 0).
#  - idle: 1,000 clients with keep_alive 5 s held 30 s (C++ and Lua): CPU and RSS per client;
#    the broker logs every packet, so the PINGREQs it received are counted.
#  - load: 100 clients publishing MQTT_MSGS (5,000) messages each at QoS 0 and QoS 1 (20
#    unfinished per client), one subscriber counting: corio C++ and corio.mqtt beside
#    libmosquitto (one thread over epoll, and a thread per client), 2 rounds interleaved; the
#    broker's CPU time over each row is added to its line (it is the bottleneck).
# Knobs: BUILD=build LUA=lua5.4 MQTT_IDLE_SECS=30 MQTT_ROUNDS=2 MQTT_MSGS=5000
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RES=${1:?usage: bench/mqtt.sh RESULTS_DIR EXTRA_FILE}
EXTRA=${2:?usage: bench/mqtt.sh RESULTS_DIR EXTRA_FILE}
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
SECS=${MQTT_IDLE_SECS:-30}
ROUNDS=${MQTT_ROUNDS:-2}
MSGS=${MQTT_MSGS:-5000}
cd "$ROOT"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/$BUILD/lua5.4/?.so;;"
mkdir -p "$RES/logs"
BROKER_PID=""
stop_broker() {
  [ -n "$BROKER_PID" ] && { kill -CONT "$BROKER_PID" 2>/dev/null; kill -KILL "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null; }
  BROKER_PID=""
}
trap stop_broker EXIT
start_broker() {  # NAME [extra config lines]
  local dir="$RES/mosquitto-$1"
  mkdir -p "$dir" && chmod 0755 "$dir"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # no persistence; no limit on the messages queued or in flight towards the subscriber
  # (mosquitto would drop the 1,001st queued message otherwise)
  printf 'allow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\nlistener %s 127.0.0.1\n%s\n' \
    "$PORT" "${2:-}" > "$dir/mosquitto.conf"
  touch "$dir/log" && chmod 0666 "$dir/log"
  taskset -c 0 /usr/sbin/mosquitto -c "$dir/mosquitto.conf" >>"$RES/logs/mosquitto.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && return 0
    sleep 0.05
  done
  return 1
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null

for impl in corio-cpp corio-lua; do
  start_broker "idle-$impl" "log_type all
log_dest file $RES/mosquitto-idle-$impl/log" || { echo "bench=mqtt_idle impl=$impl FAIL broker" >> "$EXTRA"; continue; }
  if [ $impl = corio-cpp ]; then cmd=("$BUILD/bench/mqtt_idle" "$PORT" 1000 5 "$SECS")
  else cmd=("$LUA" bench/mqtt_idle.lua "$PORT" 1000 5 "$SECS"); fi
  line=$(taskset -c 1 timeout $((SECS + 90)) "${cmd[@]}" 2>>"$RES/logs/mqtt.log")
  pings=$(grep -c "Received PINGREQ" "$RES/mosquitto-idle-$impl/log")
  echo "${line:-bench=mqtt_idle impl=$impl FAIL} pings=$pings" >> "$EXTRA"
  stop_broker
done

start_broker load || { echo "bench=mqtt_load FAIL broker" >> "$EXTRA"; exit 0; }
TCK=$(getconf CLK_TCK)
broker_cpu() { awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$BROKER_PID/stat"; }
load_rows=("corio-cpp|$BUILD/bench/mqtt_load" "corio-lua|$LUA bench/mqtt_load.lua"
           "libmosquitto|$BUILD/bench/mqtt_load_mosquitto" "libmosquitto-threads|$BUILD/bench/mqtt_load_mosquitto")
for round in $(seq "$ROUNDS"); do
  for qos in 0 1; do
    for r in "${load_rows[@]}"; do
      impl=${r%%|*}; read -r -a cmd <<<"${r#*|}"
      [ -x "${cmd[0]}" ] || command -v "${cmd[0]}" >/dev/null || { echo "bench=mqtt_load round=$round impl=$impl qos=$qos FAIL not built" >> "$EXTRA"; continue; }
      args=("$PORT" "$qos" 100 "$MSGS" 20); [ "$impl" = libmosquitto-threads ] && args+=(threads)
      b0=$(broker_cpu)
      line=$(taskset -c 1 timeout 90 "${cmd[@]}" "${args[@]}" 2>>"$RES/logs/mqtt.log")
      b1=$(broker_cpu)
      echo "${line:-bench=mqtt_load impl=$impl qos=$qos FAIL} round=$round broker_cpu_s=$(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", b-a}')" >> "$EXTRA"
    done
  done
done
stop_broker
