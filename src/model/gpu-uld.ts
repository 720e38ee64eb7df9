// The ULD term of a GpuModel (cross-tokenizer KD, issue #23; the kernel and its oracle: src/kernels/loss/uld.ts,
// uld.ref.ts): its batch inputs — the teacher's probabilities at τ, descending (N, k), and the rows' ULD weights
// (N) —, its per-row losses (N) and the gradient buffer of one logits chunk (R, V), which the classifier adds onto
// the fused loss's dlogits (gpu-classifier.ts):
//   per chunk   g_c = uld_loss(logits_c; teacher, weights)   (R, V), assigned, before the fused loss
//               dlogits_c = classifier_loss(logits_c; …)      in place
//               dlogits_c += g_c                             (backward only)
// The step's loss gains lossScale·weight·Σ w·ULD; the readback reports the weighted mean Σ w·ULD / Σ w.
import { writeArray, type Binding } from '../gpu/dispatch.ts';
import { allocBuffer } from './activations.ts';

/** The ULD objective: k teacher probabilities per row, and the term's weight beside KD and CE. */
export interface UldSpec {
  k: number;
  weight: number;
}

/** What a batch brings for the ULD term (TrainBatch.teacherUld / uldWeights). */
export interface UldBatch {
  teacherUld?: Float32Array; // (N, k)
  uldWeights?: Float32Array; // (N)
}

export function checkUldSpec(u: UldSpec): void {
  if (!Number.isInteger(u.k) || u.k < 1) throw new Error(`GpuModel: objective.uld.k must be a positive integer, got ${u.k}`);
  if (!Number.isFinite(u.weight) || u.weight < 0) throw new Error(`GpuModel: objective.uld.weight must be a finite number ≥ 0, got ${u.weight}`);
}

/** The ULD term's buffers. */
export class UldBuffers {
  readonly teacher: GPUBuffer;
  readonly weights: GPUBuffer;
  readonly losses: GPUBuffer;
  /** (R, V): one chunk's gradient. */
  readonly grad: GPUBuffer;

  constructor(private readonly device: GPUDevice, readonly spec: UldSpec, readonly N: number, rows: number, V: number) {
    checkUldSpec(spec);
    this.teacher = allocBuffer(device, N * spec.k, 'uld.teacher');
    this.weights = allocBuffer(device, N, 'uld.weights');
    this.losses = allocBuffer(device, N, 'uld.losses');
    this.grad = allocBuffer(device, rows * V, 'uld.grad');
  }

  /** The classifier's view: whole-batch bindings (each chunk binds its rows) and the chunk gradient buffer. */
  get bindings(): { k: number; weight: number; teacher: Binding; weights: Binding; losses: Binding; grad: GPUBuffer } {
    return { k: this.spec.k, weight: this.spec.weight, teacher: { buffer: this.teacher }, weights: { buffer: this.weights }, losses: { buffer: this.losses }, grad: this.grad };
  }

  /** Uploads a batch's ULD inputs (both required: a model built with the ULD term learns from every batch's). */
  write(b: UldBatch): void {
    const { N, spec: { k } } = this;
    if (!b.teacherUld || b.teacherUld.length !== N * k) throw new Error(`batch: teacherUld has ${b.teacherUld?.length ?? 'no'} elements, expected N·k = ${N}·${k}`);
    if (!b.uldWeights || b.uldWeights.length !== N) throw new Error(`batch: uldWeights has ${b.uldWeights?.length ?? 'no'} elements, expected N = ${N}`);
    writeArray(this.device, this.teacher, b.teacherUld);
    writeArray(this.device, this.weights, b.uldWeights);
  }

  destroy(): void {
    for (const b of [this.teacher, this.weights, this.losses, this.grad]) b.destroy();
  }
}
