#!/usr/bin/env bash
# On the GPU machine (see README "Benchmarks"): PyTorch and our WebGPU kernels on the same shapes, same GPU,
# same command. Run as: bash .gpu/enter.sh bash .node-dist/gpu.sh   (writes $OUT/torch.json, $OUT/webgpu.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/results}
mkdir -p "$out"
shapes=${SHAPES:-1024x1024x1024,4096x4096x4096,8192x3072x768,8192x768x3072,768x3072x8192,8192x32000x768}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true
PYTHONUNBUFFERED=1 python3 "$here/torch_bench.py" --shapes "$shapes" --iters "${ITERS:-20}" --out "$out/torch.json"
node "$here/bench.mjs" --shapes "$shapes" --iters "${ITERS:-20}" --baseline "$out/torch.json" --out "$out/webgpu.json"
