// The Python with PyTorch + HF transformers that checks our exports (`.venv-torch`, made by .ci/run from the
// machine's local wheel mirror, or $DISTILL_TORCH_PYTHON). Required, not optional: a missing one fails the test
// with the command that makes it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function torchPython(): string {
  const candidates = [process.env.DISTILL_TORCH_PYTHON, '.venv-torch/bin/python'].filter(Boolean) as string[];
  for (const py of candidates) {
    if (existsSync(py) && spawnSync(py, ['-c', 'import torch, transformers'], { stdio: 'ignore' }).status === 0) return py;
  }
  throw new Error(
    `No Python with torch + transformers (tried ${candidates.join(', ')}). Make it with: python3 -m venv .venv-torch && ` +
      '.venv-torch/bin/pip install torch transformers safetensors numpy (bash .ci/run does), or set DISTILL_TORCH_PYTHON.',
  );
}

/** Runs a Python script with JSON on stdin and returns its JSON stdout. */
export function runPythonJson<T>(py: string, script: string, input: unknown): T {
  const out = execFileSync(py, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, TRANSFORMERS_OFFLINE: '1', HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' } });
  return JSON.parse(out) as T;
}
