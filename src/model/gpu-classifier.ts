// The student's classifier (logits = lnf·W_lmᵀ), its loss and the classifier's backward, chunk by chunk over rows,
// so that the logits never take more than a fixed byte budget of GPU memory, whatever the vocabulary: at N = B·T =
// 2048 rows a 151,936-token vocabulary would need 1.2 GB of logits for the whole batch, and as much again for a
// staging copy to read them. Instead one logits buffer of R rows, (R, V), is reused by every chunk c of rows
// r0..r0+R (the last one may be shorter):
//   logits_c  = lnf[r0:r0+R] · W_lmᵀ                         (R, V)   forward matmul
//   loss_c    = classifier_loss(logits_c; labels, weights, teacher at rows r0..)  — writes dlogits_c over logits_c
//   dln[r0:]  = dlogits_c · W_lm                             (R, C)   assigned: each row belongs to one chunk
//   dW_lm    += dlogits_cᵀ · lnf[r0:r0+R]                    (V, C)   accumulated (beta 1) over the chunks
// Dispatches in one compute pass run in order, so the chunks' reuse of the logits buffer needs no synchronisation.
// R is a multiple of CHUNK_ROW_ALIGN (64) — every binding offset (rows·C·4, rows·V·4, rows·k·4, rows·8) is then a
// multiple of 256 bytes — or R = N when the whole batch fits the budget (all small models: one chunk, exactly the
// unchunked computation). The rule, logitsChunkRows, is shared with the memory estimate (src/engine/runs/estimate.ts).
// Only the student's logits are chunked: a dense teacher's logits (N, V) are the batch's input, uploaded whole.
// With a ULD term (cross-tokenizer KD, gpu-uld.ts) each chunk first writes its ULD gradient g_c (R, V) from the
// logits, and the backward adds it onto the fused loss's dlogits before the two gradient matmuls.
import { encodeDispatches, subBinding, type Binding, type Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf, type KernelPlan } from '../gpu/launch.ts';
import { planResidualAccumulate } from '../kernels/activation/activation.ts';
import { CHUNK_ROW_ALIGN, planClassifierLoss, type ClassifierLossArgs, type LossScalars, type TeacherArgs } from '../kernels/loss/loss.ts';
import { planUldLoss, type UldScalars } from '../kernels/loss/uld.ts';
import type { UldBuffers } from './gpu-uld.ts';
import type { MatmulArgs } from '../kernels/matmul/matmul.ts';

/**
 * Default byte budget of the student's logits buffer: 64 MiB, half of WebGPU's default maxStorageBufferBindingSize
 * (128 MiB), so a chunk is one binding for the matmul and the loss on any adapter; R = 320 rows at V = 49,152,
 * R = 64 at V = 151,936 — still a tall enough matmul (R × V × C) to fill a GPU.
 */
export const DEFAULT_LOGITS_BUDGET_BYTES = 64 * 1024 ** 2;

/**
 * Rows R of the logits buffer (R, V) for a batch of N rows: N when N·V floats fit `budgetBytes`; otherwise the most
 * rows, a multiple of CHUNK_ROW_ALIGN, that fit — but at least CHUNK_ROW_ALIGN (a vocabulary wider than
 * budget/256 bytes goes over the budget rather than failing) and at most N.
 */
export function logitsChunkRows(N: number, V: number, budgetBytes = DEFAULT_LOGITS_BUDGET_BYTES): number {
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(V) || V < 1) throw new Error(`logitsChunkRows: N = ${N} and V = ${V} must be positive integers`);
  if (!(budgetBytes > 0)) throw new Error(`logitsChunkRows: the logits budget must be a positive number of bytes, got ${budgetBytes}`);
  if (N * V * 4 <= budgetBytes) return N;
  const rows = Math.floor(budgetBytes / (V * 4) / CHUNK_ROW_ALIGN) * CHUNK_ROW_ALIGN;
  return Math.min(N, Math.max(CHUNK_ROW_ALIGN, rows));
}

/** The loss's per-run settings: everything of ClassifierLossArgs but the shapes and the (per chunk) bindings. */
export type ClassifierLossSettings = Omit<ClassifierLossArgs, 'N' | 'V' | 'realVocab' | 'logits' | 'labels' | 'weights' | 'losses' | 'teacher'>;

export interface ClassifierArgs {
  device: GPUDevice;
  N: number; // rows of the batch, B·T
  V: number; // vocabulary (padded)
  C: number; // hidden width
  realVocab: number;
  rows: number; // R, from logitsChunkRows
  lnf: Binding; // (N, C) the final norm's output
  dln: Binding; // (N, C) its gradient, assigned chunk by chunk
  weight: Binding; // W_lm (V, C): lm_head, or wte when tied
  dweight?: Binding; // dW_lm (V, C), accumulated; absent when W_lm is frozen (a LoRA base)
  logits: GPUBuffer; // (R, V) the chunk buffer: logits, then dlogits once the chunk's loss ran
  // The batch, whole (N rows): each chunk binds its rows.
  labels: Binding; // (N) u32
  weights: Binding; // (N) f32
  losses: Binding; // (N, 2) f32
  teacher?: TeacherArgs; // dense (N, V) or top-k (N, k)
  loss: ClassifierLossSettings;
  /** The ULD term (cross-tokenizer KD): its batch bindings and chunk gradient buffer (UldBuffers.bindings). */
  uld?: UldBuffers['bindings'];
  /** Plans a matmul (the model's: records the problem for the autotuner and picks the tuned variant). */
  mm: (a: Omit<MatmulArgs, 'variant'>) => KernelPlan;
}

export interface ClassifierChunk {
  r0: number;
  rows: number;
  /** logits_c = lnf[r0:]·W_lmᵀ into the chunk buffer. */
  forward: KernelPlan;
  loss: KernelPlan<Partial<LossScalars>>;
  /** ULD: g_c from the logits (before the loss), and dlogits_c += g_c (first of the backward). */
  uld?: { loss: KernelPlan<Partial<UldScalars>>; add: KernelPlan };
  /** dln[r0:] = dlogits_c·W_lm; dW_lm += dlogits_cᵀ·lnf[r0:]. */
  backward: KernelPlan[];
}

export interface ClassifierPlan {
  rows: number;
  chunks: ClassifierChunk[];
  /** Every chunk in order: its matmul and loss, and (backward) its two gradient matmuls. */
  dispatches(backward: boolean): Dispatch[];
  /** Rewrites the loss scalars (lossScale, weights, temperature) of every chunk's loss plan. */
  update(scalars: Partial<LossScalars>): void;
}

/** Slices a batch teacher to rows r0..r0+rows. */
function teacherRows(t: TeacherArgs | undefined, V: number, r0: number, rows: number): TeacherArgs | undefined {
  if (!t) return undefined;
  if (t.kind === 'dense') return { kind: 'dense', logits: subBinding(t.logits, r0 * V * 4, rows * V * 4) };
  return { ...t, ids: subBinding(t.ids, r0 * t.k * 4, rows * t.k * 4), logprobs: subBinding(t.logprobs, r0 * t.k * 4, rows * t.k * 4) };
}

/** Plans every chunk of rows r0..r0+rows (the last may be shorter): its classifier matmul, loss and backward. */
export function planClassifier(a: ClassifierArgs): ClassifierPlan {
  const { N, V, C, rows: R } = a;
  if (!(Number.isInteger(R) && R >= 1 && (R >= N || R % CHUNK_ROW_ALIGN === 0))) {
    throw new Error(`classifier: ${R} rows per chunk must be N = ${N} or a positive multiple of ${CHUNK_ROW_ALIGN}`);
  }
  const chunks: ClassifierChunk[] = [];
  for (let r0 = 0; r0 < N; r0 += R) {
    const rows = Math.min(R, N - r0);
    const z = subBinding(a.logits, 0, rows * V * 4); // (rows, V)
    const lnf = subBinding(a.lnf, r0 * C * 4, rows * C * 4);
    const u = a.uld, g = u && subBinding({ buffer: u.grad }, 0, rows * V * 4);
    chunks.push({
      r0, rows,
      ...(u ? {
        uld: {
          loss: planUldLoss(a.device, {
            N: rows, V, realVocab: a.realVocab, K: u.k, temperature: a.loss.temperature, logits: z, grad: g!,
            teacher: subBinding(u.teacher, r0 * u.k * 4, rows * u.k * 4), weights: subBinding(u.weights, r0 * 4, rows * 4),
            losses: subBinding(u.losses, r0 * 4, rows * 4), lossScale: a.loss.lossScale, weight: u.weight,
          }),
          add: planResidualAccumulate(a.device, { x: g!, y: z, N: rows * V }),
        },
      } : {}),
      forward: a.mm({ a: lnf, b: a.weight, c: z, M: rows, N: V, K: C, transB: true }),
      loss: planClassifierLoss(a.device, {
        ...a.loss, N: rows, V, realVocab: a.realVocab, logits: z,
        labels: subBinding(a.labels, r0 * 4, rows * 4), weights: subBinding(a.weights, r0 * 4, rows * 4),
        losses: subBinding(a.losses, r0 * 8, rows * 8), teacher: teacherRows(a.teacher, V, r0, rows),
      }),
      backward: [
        // dln rows of this chunk are assigned (beta 0); dW_lm sums over chunks (and micro-batches): beta 1.
        a.mm({ a: z, b: a.weight, c: subBinding(a.dln, r0 * C * 4, rows * C * 4), M: rows, N: C, K: V }),
        ...(a.dweight ? [a.mm({ a: z, b: lnf, c: a.dweight, M: V, N: C, K: rows, transA: true, beta: 1 })] : []),
      ],
    });
  }
  return {
    rows: R,
    chunks,
    dispatches: (backward) => chunks.flatMap((ch) => dispatchesOf(
      ch.forward, ...(ch.uld ? [ch.uld.loss] : []), ch.loss, ...(backward ? [...(ch.uld ? [ch.uld.add] : []), ...ch.backward] : []),
    )),
    update(scalars) {
      for (const ch of chunks) {
        ch.loss.update(scalars);
        if (scalars.lossScale !== undefined) ch.uld?.loss.update({ lossScale: scalars.lossScale });
      }
    },
  };
}

/**
 * Reads the logits chunk by chunk (after the caller's forward to lnf ran): per chunk, its matmul into the chunk
 * buffer and a copy into one staging buffer of R rows, then `fn(rowStart, rows, logits)` with a host copy of the
 * chunk's (rows, V) logits. GPU and host memory hold one chunk at a time.
 */
export async function readLogitsChunks(
  device: GPUDevice, plan: ClassifierPlan, logits: GPUBuffer, V: number,
  fn: (rowStart: number, rows: number, logits: Float32Array) => void | Promise<void>,
): Promise<void> {
  const staging = device.createBuffer({ label: 'logits chunk staging', size: plan.rows * V * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    for (const ch of plan.chunks) {
      const bytes = ch.rows * V * 4;
      const enc = device.createCommandEncoder({ label: `logits rows ${ch.r0}..${ch.r0 + ch.rows}` });
      const pass = enc.beginComputePass();
      encodeDispatches(pass, ch.forward.dispatches);
      pass.end();
      enc.copyBufferToBuffer(logits, 0, staging, 0, bytes);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
      const z = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      await fn(ch.r0, ch.rows, z);
    }
  } finally {
    staging.destroy();
  }
}
