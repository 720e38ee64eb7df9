// The PyTorch replica backend of bench/cross-kd.ts (issue #23), following scripts/brown-kd.ts: the replica
// (scripts/cross_kd_torch.py) trains the students from exactly what our Trainer would see — initial weights (our HF
// export of initParams), the batches our BatchLoader yields (ids, labels, weights per step), the teacher signal
// data.ts teacherTopK gives each batch position (top-k ids + logprobs, ULD probabilities + weights), our LR per step
// — and our engine checks it (bench/cross-kd.ts). It can also run the teacher phase (sampling + top-20 at τ 1) on
// the HF teacher, which the bench checks against the engine's teacher-forced logprobs.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFiles } from '../src/cli/export.ts';
import { teacherTopK, type RunData } from '../src/engine/runs/data.ts';
import { exportHfFolder } from '../src/export/hf-folder.ts';
import { realVocab, type ModelConfig } from '../src/model/config.ts';
import { initParams } from '../src/model/ref-model.ts';
import type { TextTokenizer } from '../src/tokenizer/types.ts';
import { BatchLoader, type Batch } from '../src/train/batches.ts';
import type { TrainConfig } from '../src/train/config.ts';
import { lrAt } from '../src/train/schedule.ts';
import { torchPython } from '../tests/support/torch-python.ts';

export interface ReplicaStep { run: string; step: number; loss: number; ce: number; kd: number; uld: number; gradNorm: number }
export interface ReplicaEval { run: string; loss: number; ppl: number; tokens: number; trainSeconds: number }

/** Runs scripts/cross_kd_torch.py in `mode` on a plan, passing its JSON lines to `onLine`. */
export async function runCrossTorch(mode: 'teacher' | 'train', planPath: string, onLine: (o: Record<string, unknown>) => void): Promise<void> {
  const py = torchPython();
  const script = resolve(import.meta.dirname ?? 'bench', '..', 'scripts', 'cross_kd_torch.py');
  const child = spawn(py, [script, mode, planPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TRANSFORMERS_OFFLINE: '1', HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onLine(JSON.parse(line) as Record<string, unknown>);
    }
  });
  const code = await new Promise<number>((res) => child.on('close', (c) => res(c ?? 1)));
  if (code !== 0) throw new Error(`replica: ${py} ${script} ${mode} exited with ${code}`);
}

/** One answer of the torch teacher: the sampled ids and, per answer token, its top-K and its own logprob (τ = 1). */
export interface TorchAnswer { answer: number[]; rows: { logprob: number; ids: number[]; logprobs: number[] }[] }

/** The teacher phase on the HF teacher: samples each prompt (seed seedBase + i) and teacher-forces its answer. */
export async function torchTeacher(dir: string, teacherDir: string, prompts: number[][], o: { answerTokens: number; eos: number; K: number; seedBase: number }, log: (o: object) => void): Promise<TorchAnswer[]> {
  mkdirSync(dir, { recursive: true });
  const planPath = join(dir, 'teacher-plan.json');
  writeFileSync(planPath, JSON.stringify({ teacherDir: resolve(teacherDir), prompts, ...o }));
  const answers: TorchAnswer[] = [];
  await runCrossTorch('teacher', planPath, (l) => {
    answers[l.i as number] = { answer: l.answer as number[], rows: l.rows as TorchAnswer['rows'] };
    if ((l.i as number) % 50 === 49) log({ kind: 'teacher-torch', done: (l.i as number) + 1, of: prompts.length, s: l.s });
  });
  return answers;
}

/** One student run of the replica: its name, seed, data and train config. */
export interface ReplicaRun { name: string; data: RunData; train: TrainConfig; cross: boolean }

/** Writes the replica's plan (weights, per-step batches and teacher signal, LRs, configs) under `dir`. */
export function writeCrossPlan(dir: string, o: { model: ModelConfig; tok: TextTokenizer; runs: ReplicaRun[]; heldOut: Batch[]; logSteps: number; checkEvalBatches: number }): string {
  mkdirSync(dir, { recursive: true });
  const { model } = o;
  const V = realVocab(model);
  const cat = <A extends Uint32Array | Float32Array>(parts: A[], make: (n: number) => A): A => {
    const outArr = make(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) { outArr.set(p, at); at += p.length; }
    return outArr;
  };
  const u32 = (p: Uint32Array[]) => cat(p, (n) => new Uint32Array(n)), f32 = (p: Float32Array[]) => cat(p, (n) => new Float32Array(n));
  const write = (name: string, a: Uint32Array | Float32Array) => { writeFileSync(join(dir, name), a); return join(dir, name); };
  const batchFiles = (prefix: string, bs: Batch[]) => ({
    ids: write(`${prefix}.ids.u32`, u32(bs.map((b) => b.ids))), labels: write(`${prefix}.labels.u32`, u32(bs.map((b) => b.labels))),
    weights: write(`${prefix}.weights.f32`, f32(bs.map((b) => b.weights))),
  });
  const runs = o.runs.map((r) => {
    const t = r.train, table = r.data.topk;
    const loader = new BatchLoader(r.data.rows, t.batchSize, t.seqLen, t.seed);
    const bs = Array.from({ length: t.steps }, () => loader.next());
    const files: Record<string, string> = batchFiles(r.name, bs);
    if (r.cross) {
      if (!table) throw new Error(`replica: run ${r.name} is cross but its data has no top-k table`);
      const sig = bs.map((b) => teacherTopK(b, r.data.rows, table, V, t.temperature));
      files.tIds = write(`${r.name}.tids.u32`, u32(sig.map((s) => s.teacherIds)));
      files.tLps = write(`${r.name}.tlps.f32`, f32(sig.map((s) => s.teacherLogprobs)));
      if (table.uld) {
        files.uldP = write(`${r.name}.uldp.f32`, f32(sig.map((s) => s.teacherUld!)));
        files.uldW = write(`${r.name}.uldw.f32`, f32(sig.map((s) => s.uldWeights!)));
      }
    }
    const init = join(dir, `${r.name}.init`);
    writeFiles(init, exportHfFolder({ config: model, params: initParams(model, t.seed), tokenizer: o.tok }));
    return {
      name: r.name, init, save: join(dir, `${r.name}.final`), files, k: table?.k ?? 0,
      lrs: Array.from({ length: t.steps }, (_, i) => lrAt(i + 1, { lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minLrRatio: t.minLrRatio })),
      objective: t.objective, kdWeight: t.kdWeight, ceWeight: t.ceWeight, uldWeight: r.cross && table?.uld ? t.uldWeight ?? 1 : 0,
      temperature: t.temperature, topkPolicy: t.topkPolicy,
    };
  });
  const t0 = o.runs[0]!.train;
  const plan = {
    B: t0.batchSize, T: t0.seqLen, realVocab: V, logSteps: o.logSteps, checkEvalBatches: o.checkEvalBatches,
    hp: { weightDecay: t0.weightDecay, beta1: t0.beta1, beta2: t0.beta2, eps: t0.eps, clipNorm: t0.clipNorm },
    eval: { ...batchFiles('eval', o.heldOut), batches: o.heldOut.length },
    runs,
  };
  const planPath = join(dir, 'plan.json');
  writeFileSync(planPath, JSON.stringify(plan));
  return planPath;
}

/** Runs the replica's training on a plan: every run's logged steps, its held-out evaluation, and that evaluation on
 *  the plan's first checkEvalBatches batches (what the engine re-evaluates). */
export async function trainReplica(planPath: string, log: (o: object) => void) {
  const steps: Record<string, ReplicaStep[]> = {}, evals: Record<string, ReplicaEval> = {}, checkEvals: Record<string, ReplicaEval> = {};
  await runCrossTorch('train', planPath, (l) => {
    log({ source: 'replica', ...l });
    if (l.kind === 'step') (steps[l.run as string] ??= []).push(l as unknown as ReplicaStep);
    if (l.kind === 'eval') evals[l.run as string] = l as unknown as ReplicaEval;
    if (l.kind === 'check-eval') checkEvals[l.run as string] = l as unknown as ReplicaEval;
  });
  return { steps, evals, checkEvals };
}
