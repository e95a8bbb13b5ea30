#!/usr/bin/env bash
# The MQTT codec under libFuzzer (clang, ASan + UBSan), as a ctest: builds the target from the
# codec's sources into BUILD_DIR/fuzz (again only when a source is newer), replays every
# committed input (regressions/ then the seed corpus), then fuzzes for a bounded time from a
# copy of the corpus kept in the build directory (the checkout stays clean). Any crash fails,
# naming the input. Usage: run.sh BUILD_DIR [libFuzzer options, e.g. -max_total_time=120]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR [libFuzzer options]}
shift
cxx=${CORIO_FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "FAIL: $cxx not found: the fuzz test needs clang and libclang-rt (scripts/bootstrap installs them)"
  exit 1
fi

out=$build/fuzz
mkdir -p "$out"
bin=$out/mqtt_packet_fuzz
srcs=("$root"/src/mqtt/packet_codec.cpp "$root"/src/mqtt/properties.cpp "$root"/src/mqtt/error.cpp
      "$here"/mqtt_packet_fuzz.cpp)
deps=("${srcs[@]}" "$root"/src/mqtt/*.hpp "$root"/include/mqtt/corio/mqtt_packet.hpp
      "$root"/include/core/corio/result.hpp "$0")
stale=0
[ -x "$bin" ] || stale=1
for f in "${deps[@]}"; do [ "$f" -nt "$bin" ] && stale=1; done
if [ $stale = 1 ]; then
  echo "building $bin"
  "$cxx" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 -std=c++20 -Wall -Wextra \
    -I"$root"/include/core -I"$root"/include/net -I"$root"/include/mqtt \
    "${srcs[@]}" -o "$bin.tmp" || { echo "FAIL: the fuzz target did not build"; exit 1; }
  mv "$bin.tmp" "$bin"
fi

# A crash's report ends the log; libFuzzer names each input it runs before running it.
crashed() {
  echo "FAIL: $1"
  tail -n 60 "$2"
  exit 1
}

inputs=()
for d in "$here"/regressions/mqtt_packet "$here"/corpus/mqtt_packet; do
  for f in "$d"/*; do [ -f "$f" ] && inputs+=("$f"); done
done
if [ ${#inputs[@]} -eq 0 ]; then
  echo "FAIL: no seed corpus in $here/corpus/mqtt_packet"
  exit 1
fi
log=$out/replay.log
if ! "$bin" "${inputs[@]}" >"$log" 2>&1; then
  crashed "crash on $(grep '^Running: ' "$log" | tail -n 1 | cut -d' ' -f2-)" "$log"
fi
echo "replayed ${#inputs[@]} committed inputs"

work=$out/corpus
mkdir -p "$work" "$out/crashes"
cp -n "$here"/corpus/mqtt_packet/* "$work"/ 2>/dev/null
log=$out/fuzz.log
if ! "$bin" "$work" -runs=2000000 -max_total_time=20 -max_len=4096 -timeout=10 -print_final_stats=1 \
     -artifact_prefix="$out/crashes/" "$@" >"$log" 2>&1; then
  crashed "fuzzing crashed; input: $(grep -o 'Test unit written to .*' "$log" | tail -n 1 | cut -d' ' -f5-)
  (commit it to tests/fuzz/regressions/mqtt_packet/ with the fix)" "$log"
fi
grep -E '^#[0-9]+.*DONE|^stat::number_of_executed_units|^stat::peak_rss_mb' "$log"
echo "fuzz ok"
