// The Export stage's "what each format costs": a run's latest checkpoint as each GGUF storage keeps it (F32, F16,
// Q8_0, Q4_K_M, Q4_0: quantized and read back as llama.cpp reads it, src/export/stored-weights.ts), evaluated on the
// run's held-out batches with the same evaluateHeldOut as training and the Evaluate stage, so the F32 row is the
// Evaluate stage's perplexity and every other row is that model after storage. Sizes are the files' exact bytes.
// Without held-out tokens the rows carry sizes only, and a note says why.
import type { ExportFormat } from '../../export/formats.ts';
import type { GgufDtype } from '../../export/gguf.ts';
import { storedWeights } from '../../export/stored-weights.ts';
import type { ExportInput } from '../../export/types.ts';
import { GpuModel } from '../../model/gpu-model.ts';
import { evalBatches } from '../../train/batches.ts';
import { evaluateHeldOut } from '../../train/evaluate.ts';
import { CE_ONLY } from '../../train/step-trainer.ts';
import { runData, type RunContext } from './runner.ts';
import type { StoredRun } from './run-store.ts';

/** Storage compared, and the export format that writes it. */
export const COMPARED: readonly { dtype: GgufDtype; format: ExportFormat }[] = [
  { dtype: 'F32', format: 'gguf' }, { dtype: 'F16', format: 'gguf-f16' }, { dtype: 'Q8_0', format: 'gguf-q8_0' },
  { dtype: 'Q4_K_M', format: 'gguf-q4_k_m' }, { dtype: 'Q4_0', format: 'gguf-q4_0' },
];

export interface FormatCost {
  dtype: GgufDtype;
  format: ExportFormat;
  /** model.gguf's size. */
  bytes: number;
  /** Held-out loss and perplexity of the weights as stored (absent without held-out tokens). */
  loss?: number;
  ppl?: number;
  /** Perplexity change against F32, in percent. */
  pplChangePct?: number;
}

export interface FormatComparison {
  runId: string;
  step: number;
  /** Held-out tokens each perplexity is over. */
  tokens: number;
  rows: FormatCost[];
  notes: string[];
  ms: number;
}

export async function compareFormats(
  ctx: RunContext, run: StoredRun, weights: { params: Float32Array; step: number }, input: ExportInput,
  onProgress?: (m: string) => void,
): Promise<FormatComparison> {
  const t0 = performance.now();
  onProgress?.('reading the held-out data');
  const data = await runData(ctx, run);
  const { batchSize: B, seqLen: T } = run.train;
  const batches = evalBatches(data.evalRows, B, T, run.train.evalBatches, true);
  const notes: string[] = [];
  if (batches.length === 0) notes.push('no held-out record with an answer: sizes only (hold out a smaller share, or add records, to measure quality)');
  const student = batches.length ? new GpuModel(ctx.device, run.model, B, T, CE_ONLY) : undefined;
  const rows: FormatCost[] = [];
  let tokens = 0;
  try {
    for (const { dtype, format } of COMPARED) {
      onProgress?.(`${dtype}: storing the weights`);
      const stored = storedWeights({ ...input, params: weights.params }, dtype);
      const row: FormatCost = { dtype, format, bytes: stored.bytes };
      if (student) {
        student.uploadParams(stored.params);
        const r = await evaluateHeldOut(student, batches, { onBatch: (i, n) => onProgress?.(`${dtype}: held-out batch ${i + 1} of ${n}`) });
        if (r && Number.isFinite(r.loss)) {
          row.loss = r.loss;
          row.ppl = r.ppl;
          tokens = r.tokens;
        } else notes.push(`${dtype}: the held-out loss is ${r ? 'not finite' : 'absent'}`);
      }
      rows.push(row);
    }
  } finally {
    student?.destroy();
  }
  const base = rows[0]?.ppl;
  if (base !== undefined) for (const r of rows) if (r.ppl !== undefined) r.pplChangePct = 100 * (r.ppl / base - 1);
  return { runId: run.id, step: weights.step, tokens, rows, notes, ms: performance.now() - t0 };
}
