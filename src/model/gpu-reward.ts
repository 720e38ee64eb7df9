// A reward model on the GPU (issue #24, "distilled reward model training"): the student's trunk (a GpuModel built
// with scoreHead) and a scalar head w (C) — the trained slab's tail — on the final norm's output h of each row's last
// real token, trained on preference pairs with the Bradley–Terry loss (margins optional). Its oracle is
// reward.ref.ts; its export exportRewardFolder (HF *ForSequenceClassification).
// A batch is P pairs as B = 2P right-padded rows (chosen 0..P−1, rejected P..2P−1). One step, two submissions:
//   1. gradients cleared; forward to lnf; each row's pooled row h_b = lnf[b, last_b] and w copied into one staging
//      buffer (B·C + C floats read back)
//   2. host, in f64: s_b = w·h_b; L = mean_p softplus(−(s_c − s_r − margin)); ds_b;
//      dw = Σ_b ds_b·h_b written into the tail's gradient; dln = 0 but row (b, last_b) = ds_b·w, written whole
//   3. the model's backward from dln (final norm → layers → embedding) + clipping and AdamW over trunk and head at once
// WebGPU's queue order puts the host's writes after submission 1 (its clear) and before submission 2.
// The head costs B·C multiply-adds: it stays on the host; only the trunk's products run on the GPU.
import { bufferOf, encodeDispatches, offsetOf, writeArray } from '../gpu/dispatch.ts';
import { NO_LABEL } from '../kernels/loss/loss.ts';
import type { ModelConfig } from './config.ts';
import { GpuModel, type GpuModelOptions, type ObjectiveSpec, type OptimizerSpec } from './gpu-model.ts';
import { bradleyTerry, type BradleyTerryResult } from './reward.ref.ts';

/** The trunk's classifier objective is never run: the reward model's loss is the host's. */
const NO_CLASSIFIER: ObjectiveSpec = { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 0, teacher: { kind: 'none' } };

export interface RewardPairBatch {
  /** (2P, T): P chosen rows, then their P rejected rows, right-padded. */
  ids: Uint32Array;
  /** Real tokens per row (2P), each 1..T: the score is read at token lengths[b] − 1. */
  lengths: ArrayLike<number>;
  /** The margin each pair must be won by (default 0). */
  margin?: number | ArrayLike<number>;
}

export interface RewardStepResult extends BradleyTerryResult {
  /** One score per row (2P). */
  scores: Float64Array;
  /** The gradient norm before clipping (NaN without an update). */
  gradNorm: number;
  /** The gradient had a NaN/Inf: the GPU skipped the update. */
  skipped: boolean;
}

export class GpuRewardModel {
  readonly gpu: GpuModel;
  readonly B: number;

  /** `P` pairs a batch (2P rows of T tokens); the options are the GpuModel's (LoRA, recompute, buffer sizes). */
  constructor(device: GPUDevice, readonly config: ModelConfig, readonly P: number, readonly T: number, optimizer: OptimizerSpec, options: Omit<GpuModelOptions, 'hidden' | 'scoreHead'> = {}) {
    if (!Number.isInteger(P) || P < 1) throw new Error(`GpuRewardModel: ${P} pairs a batch, expected a positive integer`);
    this.B = 2 * P;
    this.gpu = new GpuModel(device, config, this.B, T, NO_CLASSIFIER, optimizer, { ...options, scoreHead: true });
  }

  /** Writes the score head w (C). */
  uploadHead(w: Float32Array): void {
    const C = this.config.hidden;
    if (w.length !== C) throw new Error(`GpuRewardModel: the score head has ${w.length} values, the model is ${C} wide`);
    writeArray(this.gpu.device, bufferOf(this.gpu.tail), w, offsetOf(this.gpu.tail));
  }

  readHead(): Promise<Float32Array> {
    return this.gpu.state.params.read(this.config.hidden, this.gpu.stateSizes.params);
  }

  /** Scores of B rows (ids (B, T), right-padded, `lengths` real tokens each): forward only. */
  async scores(ids: Uint32Array, lengths: ArrayLike<number>): Promise<Float64Array> {
    return (await this.forward(ids, lengths, false)).scores;
  }

  /**
   * Scores any number of rows (ids (n, T)) in batches of B (the last one filled with copies of its first row), for
   * evaluation and RL rewards.
   */
  async scoreRows(ids: Uint32Array, lengths: ArrayLike<number>): Promise<Float64Array> {
    const { B, T } = this, n = lengths.length;
    if (ids.length !== n * T) throw new Error(`GpuRewardModel.scoreRows: ${ids.length} ids for ${n} rows of ${T}`);
    const out = new Float64Array(n);
    for (let r0 = 0; r0 < n; r0 += B) {
      const rows = Math.min(B, n - r0);
      const bIds = new Uint32Array(B * T), bLen = new Array<number>(B);
      for (let b = 0; b < B; b++) {
        const r = r0 + (b < rows ? b : 0);
        bIds.set(ids.subarray(r * T, (r + 1) * T), b * T);
        bLen[b] = lengths[r]!;
      }
      out.set((await this.scores(bIds, bLen)).subarray(0, rows), r0);
    }
    return out;
  }

  /** ∂loss/∂w of the last backward. */
  readHeadGrad(): Promise<Float32Array> {
    return this.gpu.state.grads.read(this.config.hidden, this.gpu.stateSizes.params);
  }

  /**
   * The Bradley–Terry loss of a pair batch; with `backward` (default: with `update`) its gradients into the trunk's
   * and head's, and with `update` one clipped AdamW step on both.
   */
  async step(batch: RewardPairBatch, opts: { update?: { lr: number; step: number }; backward?: boolean } = {}): Promise<RewardStepResult> {
    const { P, B, T, gpu } = this, C = this.config.hidden;
    const update = opts.update, backward = opts.backward ?? !!update;
    if (update && !backward) throw new Error('GpuRewardModel.step: an update needs the backward');
    const f = await this.forward(batch.ids, batch.lengths, backward);
    const bt = bradleyTerry(f.scores.subarray(0, P), f.scores.subarray(P), batch.margin ?? 0);
    if (!backward) return { ...bt, scores: f.scores, gradNorm: NaN, skipped: false };
    // ∂L/∂s_b: +dChosen for a chosen row, −dChosen for its rejected row.
    const dw = new Float32Array(C), dln = new Float32Array(B * T * C);
    for (let b = 0; b < B; b++) {
      const ds = b < P ? bt.dChosen[b]! : -bt.dChosen[b - P]!;
      const row = (b * T + f.last[b]!) * C;
      for (let c = 0; c < C; c++) {
        dw[c]! += ds * f.pooled[b * C + c]!;
        dln[row + c] = ds * f.head[c]!;
      }
    }
    const device = gpu.device;
    writeArray(device, gpu.acts.dln, dln);
    writeArray(device, bufferOf(gpu.tailGrad), dw, offsetOf(gpu.tailGrad));
    if (update) gpu.state.setStep(update);
    const enc = device.createCommandEncoder({ label: 'reward backward' });
    const pass = enc.beginComputePass({ label: 'reward backward' });
    encodeDispatches(pass, [...gpu.backward, ...(update ? gpu.state.optimize : [])]);
    pass.end();
    const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(gpu.state.stats, 0, staging, 0, 16);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const stats = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return { ...bt, scores: f.scores, gradNorm: update ? stats[0]! : NaN, skipped: !!update && stats[2]! !== 0 };
  }

  /** Forward to the final norm (gradients cleared first when a backward follows); reads the pooled rows and w. */
  private async forward(ids: Uint32Array, lengths: ArrayLike<number>, clearGrads: boolean): Promise<{ scores: Float64Array; pooled: Float32Array; head: Float32Array; last: number[] }> {
    const { B, T, gpu } = this, C = this.config.hidden;
    if (lengths.length !== B) throw new Error(`reward batch: ${lengths.length} lengths for ${B} rows`);
    const last = Array.from({ length: B }, (_, b) => {
      const n = lengths[b]!;
      if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`reward batch: row ${b} has length ${n}, expected 1..${T}`);
      return n - 1;
    });
    // Labels and weights are unused (no classifier); the explicit loss scale skips their check.
    gpu.setBatch({ ids, labels: new Uint32Array(B * T).fill(NO_LABEL), weights: new Float32Array(B * T) }, 1, 1);
    gpu.adapters?.setDropout({ active: false, seed: 0 });
    const device = gpu.device;
    const enc = device.createCommandEncoder({ label: 'reward forward' });
    if (clearGrads) gpu.state.grads.clear(enc);
    const pass = enc.beginComputePass({ label: 'reward forward' });
    encodeDispatches(pass, gpu.forward);
    pass.end();
    const staging = device.createBuffer({ size: (B + 1) * C * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    for (let b = 0; b < B; b++) enc.copyBufferToBuffer(gpu.acts.lnf, (b * T + last[b]!) * C * 4, staging, b * C * 4, C * 4);
    enc.copyBufferToBuffer(bufferOf(gpu.tail), offsetOf(gpu.tail), staging, B * C * 4, C * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const r = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    const pooled = r.subarray(0, B * C), head = r.subarray(B * C);
    const scores = new Float64Array(B);
    for (let b = 0; b < B; b++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += pooled[b * C + c]! * head[c]!;
      scores[b] = s;
    }
    return { scores, pooled, head, last };
  }

  destroy(): void {
    this.gpu.destroy();
  }
}
