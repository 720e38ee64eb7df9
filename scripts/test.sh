#!/usr/bin/env bash
# `npm test`: every tier. The GPU tests (Dawn in Node) and then the Chromium e2e tests run one file at a time, each
# using both cores through SwiftShader; the typecheck and the unit tests (mostly waiting on child processes, servers
# and timers) run beside them, their output kept in test-results/unit.log and printed when they end. The GPU and e2e
# output is also kept (test-results/gpu.log, e2e.log); when a tier fails, its failures are printed again last, so
# that the end of the output (all a CI summary may keep) says what failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results
start=$SECONDS
( npm run --silent typecheck && npx vitest run --project unit ) > test-results/unit.log 2>&1 &
side=$!
npx vitest run --project gpu 2>&1 | tee test-results/gpu.log
gpu=${PIPESTATUS[0]}
e2e=skipped
if [ "$gpu" = 0 ]; then
  npx vite build --logLevel warn && npx vitest run --project e2e 2>&1 | tee test-results/e2e.log
  e2e=${PIPESTATUS[0]}
fi
wait "$side"
unit=$?
echo "---- typecheck + unit tests (test-results/unit.log) ----"
cat test-results/unit.log
# What failed, again, at the very end: vitest's failure report (from "Failed Tests" on) of each failing tier.
failures() {
  local report; report=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '/Failed Tests [0-9]+|Unhandled Error/{on=1} on' | head -c 6000)
  if [ -n "$report" ]; then echo "$report"; else sed 's/\x1b\[[0-9;]*m//g' "$1" | tail -n 40; fi
}
[ "$gpu" = 0 ] || { echo "---- GPU tests failed (test-results/gpu.log) ----"; failures test-results/gpu.log; }
[ "$e2e" = 0 ] || [ "$e2e" = skipped ] || { echo "---- e2e tests failed (test-results/e2e.log) ----"; failures test-results/e2e.log; }
echo "test: GPU exit $gpu, e2e exit $e2e, typecheck + unit exit $unit, $((SECONDS - start)) s"
[ "$gpu" = 0 ] && [ "$e2e" = 0 ] && [ "$unit" = 0 ]
