// Runs the PyTorch replica of our trainer (scripts/brown_kd_torch.py) on a plan written by scripts/brown-kd.ts or
// scripts/default-teacher-replica.ts, passing its JSON lines on. A module of its own: the scripts that use it are
// bundled with their own `main` guards, and importing one script from another would run both.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { EvalLog } from '../src/train/step-trainer.ts';
import { torchPython } from '../tests/support/torch-python.ts';

type Eval = Pick<EvalLog, 'loss' | 'ppl' | 'klToTeacher' | 'top1Agreement'>;

/** Runs the PyTorch replica on a plan, passing its lines on; collects per-step losses and the final evaluations. */
export async function runReplica(planPath: string, out: (o: object) => void) {
  const py = torchPython();
  const script = resolve(import.meta.dirname ?? 'scripts', '..', 'scripts', 'brown_kd_torch.py');
  const child = spawn(py, [script, planPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TRANSFORMERS_OFFLINE: '1', HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  const stepLoss: Record<string, number[]> = {}, finalEval: Record<string, Eval> = {}, checkEval: Record<string, Eval> = {};
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const e = JSON.parse(line) as { kind: string; run: string; step: number; loss: number } & Eval;
      out({ source: 'replica', ...e });
      if (e.kind === 'step') (stepLoss[e.run] ??= [])[e.step - 1] = e.loss;
      if (e.kind === 'eval') finalEval[e.run] = e;
      if (e.kind === 'check-eval') checkEval[e.run] = e;
    }
  });
  const code = await new Promise<number>((res) => child.on('close', (c) => res(c ?? 1)));
  if (code !== 0) throw new Error(`replica: ${py} ${script} exited with ${code}`);
  return { stepLoss, finalEval, checkEval };
}

