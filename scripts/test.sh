#!/usr/bin/env bash
# `npm test`: every tier. The GPU tests (Dawn in Node) and then the Chromium e2e tests run one file at a time, each
# using both cores through SwiftShader; the typecheck and the unit tests (mostly waiting on child processes, servers
# and timers) run beside them, their output kept in test-results/unit.log and printed when they end.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results
start=$SECONDS
( npm run --silent typecheck && npx vitest run --project unit ) > test-results/unit.log 2>&1 &
side=$!
npx vitest run --project gpu && npx vite build --logLevel warn && npx vitest run --project e2e
main=$?
wait "$side"
unit=$?
echo "---- typecheck + unit tests (test-results/unit.log) ----"
cat test-results/unit.log
echo "test: GPU + e2e exit $main, typecheck + unit exit $unit, $((SECONDS - start)) s"
[ "$main" = 0 ] && [ "$unit" = 0 ]
