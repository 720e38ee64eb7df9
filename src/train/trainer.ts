// The training loop over the GPU model: warmup + cosine LR, gradient accumulation, AdamW with clipping, periodic
// held-out evaluation, non-finite steps skipped on the GPU and reported (repeated ones roll back to the last
// checkpoint), checkpoints through a CheckpointStore, and exact resume (same data order, same loss curve).
import { GpuModel, type ObjectiveSpec, type StepReadback, type TrainBatch } from '../model/gpu-model.ts';
import type { ModelConfig } from '../model/config.ts';
import type { GeneratorAdapters } from '../model/generate.ts';
import type { BaseSource } from '../model/base-layout.ts';
import { initLora } from '../model/lora.ts';
import { initParams } from '../model/ref-model.ts';
import { BatchLoader, evalBatches, type Batch, type PackedRow } from './batches.ts';
import { checkpointBlob, decodeCheckpoint, encodeCheckpoint, type Checkpoint, type CheckpointStore } from './checkpoint.ts';
import { optimizerOf, scheduleOf, type TrainConfig } from './config.ts';
import { evaluateHeldOut, type TeacherSignal } from './evaluate.ts';
import { lrAt } from './schedule.ts';
import { stepDropoutSeed, type EvalLog, type StepLog, type StepTrainer, type TrainLog } from './step-trainer.ts';
import type { SlabShards } from '../model/slab-shards.ts';

type Rows = readonly PackedRow[];

export interface TrainerOptions {
  device: GPUDevice;
  model: ModelConfig;
  train: TrainConfig;
  rows: Rows;
  evalRows?: Rows;
  store?: CheckpointStore;
  /** Name of the checkpoint this run saves to (and resumes from with `resume`). */
  checkpointName?: string;
  /** Teacher signal per batch for token-level KD (dense logits or top-k), when the objective needs it; `split` says
   *  whether the batch's `rows` index the training rows or the held-out ones. */
  teacherFor?: (batch: Batch, split: 'train' | 'eval') => TeacherSignal | Promise<TeacherSignal>;
  teacherTopK?: number;
  /** Cross-tokenizer KD: teacher probabilities per row of the ULD term (teacherFor gives teacherUld, uldWeights). */
  teacherUld?: number;
  /**
   * A batch that replaces the loader's for micro-batch `micro` of step `step` (e.g. an on-policy batch of the
   * student's own samples, teacher signal included), or null to take the loader's. The data cursor only moves
   * for loader batches.
   */
  batchFor?: (step: number, micro: number) => Promise<TrainBatch | null>;
  /** Evaluate on a last, zero-padded batch too (held-out sets smaller than a batch still get an evaluation). */
  padEval?: boolean;
  /** LoRA (train.lora): the frozen base's weights (the run's starting model), whole or tensor by tensor; the
   *  adapters start as PEFT's. */
  base?: BaseSource;
  log?: (e: TrainLog) => void;
}

export class Trainer implements StepTrainer {
  readonly gpu: GpuModel;
  readonly loader: BatchLoader;
  step = 0;
  adamStep = 0;
  private readonly evalSet: Batch[];
  private skipsInARow = 0;

  /** Like the constructor; with `autotune`, every matmul of the step first gets its fastest variant on this device. */
  static async create(o: TrainerOptions & { autotune?: boolean }): Promise<Trainer> {
    return new Trainer(o, o.autotune ? await GpuModel.tuned(...Trainer.modelArgs(o)) : undefined);
  }

  private static modelArgs(o: TrainerOptions): ConstructorParameters<typeof GpuModel> {
    const t = o.train;
    const teacher: ObjectiveSpec['teacher'] = t.objective === 'none' ? { kind: 'none' }
      : o.teacherTopK ? { kind: 'topk', k: o.teacherTopK, policy: t.topkPolicy } : { kind: 'dense' };
    return [o.device, o.model, t.batchSize, t.seqLen, {
      objective: t.objective, temperature: t.temperature, kdWeight: t.kdWeight, ceWeight: t.ceWeight, beta: t.beta, lambda: t.lambda, teacher,
      ...(o.teacherUld ? { uld: { k: o.teacherUld, weight: t.uldWeight ?? 1 } } : {}),
    }, optimizerOf(t),
    {
      ...(t.hiddenWeight > 0 ? { hidden: { teacherWidth: t.teacherHiddenWidth, kind: t.hiddenKind, weight: t.hiddenWeight, seed: t.seed } } : {}),
      ...(t.lora ? { lora: t.lora } : {}),
      ...(t.recompute ? { recompute: true } : {}),
    }];
  }

  constructor(private readonly o: TrainerOptions, gpu?: GpuModel) {
    const t = o.train;
    if (t.lora && !o.base) throw new Error('Trainer: LoRA trains adapters on a frozen base, and no base weights were given');
    if (!t.lora && o.base) throw new Error('Trainer: base weights were given, but the train config has no lora');
    this.gpu = gpu ?? new GpuModel(...Trainer.modelArgs(o));
    if (o.base) this.gpu.uploadBase(o.base);
    else this.gpu.uploadParams(initParams(o.model, t.seed));
    if (t.lora) this.gpu.uploadAdapters(initLora(o.model, t.lora, t.seed));
    this.loader = new BatchLoader(o.rows, t.batchSize, t.seqLen, t.seed);
    this.evalSet = o.evalRows ? evalBatches(o.evalRows, t.batchSize, t.seqLen, t.evalBatches, o.padEval) : [];
  }

  private emit(e: TrainLog) {
    this.o.log?.(e);
  }

  private async batchWithTeacher(b: Batch): Promise<TrainBatch> {
    return this.o.teacherFor ? { ...b, ...(await this.o.teacherFor(b, 'train')) } : b;
  }

  /** One optimizer step (gradAccum micro-batches). */
  async trainStep(): Promise<StepLog> {
    const t = this.o.train;
    const t0 = performance.now();
    const step = this.step + 1;
    const lr = lrAt(step, scheduleOf(t));
    let r: StepReadback | undefined;
    let loss = 0, ce = 0, kd = 0, uld = 0;
    for (let micro = 0; micro < t.gradAccum; micro++) {
      const replaced = this.o.batchFor ? await this.o.batchFor(step, micro) : null;
      this.gpu.setBatch(replaced ?? await this.batchWithTeacher(this.loader.next()), t.gradAccum);
      const last = micro === t.gradAccum - 1;
      // LoRA dropout (when lora.dropout > 0) with this micro-batch's masks; evaluation runs without a seed.
      const dropoutSeed = stepDropoutSeed(t.seed, step, micro);
      r = await this.gpu.run({ zeroGrads: micro === 0, update: last ? { lr, step: this.adamStep + 1 } : undefined, dropoutSeed });
      loss += r.loss; ce += r.ce / t.gradAccum; kd += r.kd / t.gradAccum; uld += r.uld / t.gradAccum;
    }
    this.step = step;
    const skipped = r!.skipped;
    if (skipped) {
      this.skipsInARow++;
      this.emit({ kind: 'event', step, code: 'skipped', level: 'warn', message: `step ${step} skipped: non-finite gradient (${this.skipsInARow} in a row)` });
      if (this.skipsInARow >= t.maxSkips) await this.rollback();
    } else {
      this.skipsInARow = 0;
      this.adamStep++;
    }
    const ms = performance.now() - t0;
    const log: StepLog = {
      kind: 'step', step, lr, loss, ce, kd, ...(this.o.teacherUld ? { uld } : {}), gradNorm: r!.gradNorm, skipped,
      tokensPerSec: (t.batchSize * t.seqLen * t.gradAccum) / (ms / 1000), ms,
    };
    this.emit(log);
    return log;
  }

  /** Held-out cross-entropy (mean over target tokens) and perplexity; KL and top-1 agreement with a teacher. */
  async evaluate(): Promise<EvalLog | undefined> {
    const teacherFor = this.o.teacherFor;
    const r = await evaluateHeldOut(this.gpu, this.evalSet, {
      ...(this.o.teacherTopK ? { topK: this.o.teacherTopK } : {}),
      ...(teacherFor ? { teacherFor: async (b: Batch) => teacherFor(b, 'eval') } : {}),
    });
    if (!r) return undefined;
    const e: EvalLog = {
      kind: 'eval', step: this.step, loss: r.loss, ppl: r.ppl,
      ...(r.klToTeacher !== undefined ? { klToTeacher: r.klToTeacher } : {}),
      ...(r.top1Agreement !== undefined ? { top1Agreement: r.top1Agreement } : {}),
    };
    this.emit(e);
    return e;
  }

  /** The weights a Generator samples from (the frozen base under LoRA, with `adapters`). */
  get params(): SlabShards {
    return this.gpu.params;
  }

  /** LoRA: the adapters a Generator applies on the base. */
  get adapters(): GeneratorAdapters | undefined {
    return this.o.train.lora ? { lora: this.o.train.lora, slab: this.gpu.state.params } : undefined;
  }

  /** The state as a checkpoint whose tensors are views of its encoded blob (read from the GPU straight into it). */
  async snapshot(): Promise<Checkpoint> {
    const { checkpoint } = checkpointBlob({ model: this.o.model, train: this.o.train, step: this.step, adamStep: this.adamStep, cursor: this.loader.cursor }, this.gpu.stateSizes);
    await this.gpu.readStateInto(checkpoint);
    return checkpoint;
  }

  async save(): Promise<void> {
    if (!this.o.store) return;
    const name = this.o.checkpointName ?? 'latest';
    await this.o.store.put(name, encodeCheckpoint(await this.snapshot()));
    this.emit({ kind: 'event', step: this.step, code: 'checkpoint', level: 'info', message: `checkpoint '${name}' saved at step ${this.step}` });
  }

  /** Restores a checkpoint into this trainer (the configs must match the checkpoint's). */
  restore(c: Checkpoint): void {
    if (JSON.stringify(c.model) !== JSON.stringify(this.o.model)) throw new Error('resume: the checkpoint was made with a different model config');
    if (!!c.tail !== this.gpu.hasHiddenProjection) throw new Error('resume: the checkpoint and this run disagree on hidden-state distillation (W_h)');
    if (JSON.stringify(c.train.lora) !== JSON.stringify(this.o.train.lora)) throw new Error(`resume: the checkpoint's LoRA (${JSON.stringify(c.train.lora ?? 'none')}) is not this run's (${JSON.stringify(this.o.train.lora ?? 'none')})`);
    // A LoRA checkpoint's params are the adapters; the base stays what the trainer was given.
    if (this.o.train.lora) this.gpu.uploadAdapters(c.params);
    else this.gpu.uploadParams(c.params);
    if (c.tail) this.gpu.uploadHiddenProjection(c.tail);
    this.gpu.writeOptimizerState({ m: c.m, v: c.v });
    this.step = c.step;
    this.adamStep = c.adamStep;
    this.loader.cursor = { ...c.cursor };
  }

  async resume(): Promise<boolean> {
    const bytes = await this.o.store?.get(this.o.checkpointName ?? 'latest');
    if (!bytes) return false;
    this.restore(decodeCheckpoint(bytes));
    this.emit({ kind: 'event', step: this.step, code: 'resumed', level: 'info', checkpointStep: this.step, message: `resumed from step ${this.step}` });
    return true;
  }

  private async rollback(): Promise<void> {
    const bytes = await this.o.store?.get(this.o.checkpointName ?? 'latest');
    if (!bytes) throw new Error(`training diverged: ${this.skipsInARow} non-finite steps in a row and no checkpoint to roll back to; lower lr or enable clipping`);
    const c = decodeCheckpoint(bytes);
    // Keep the data cursor moving forward so the same bad batches are not replayed.
    const cursor = { ...this.loader.cursor };
    this.restore(c);
    this.loader.cursor = cursor;
    this.skipsInARow = 0;
    this.emit({ kind: 'event', step: this.step, code: 'rolled-back', level: 'warn', checkpointStep: c.step, message: `rolled back to the checkpoint of step ${c.step} after repeated non-finite steps` });
  }

  /** Runs to `until` (default `train.steps`; the LR schedule always spans train.steps), evaluating and checkpointing. */
  async run(until = this.o.train.steps): Promise<void> {
    const t = this.o.train;
    while (this.step < Math.min(until, t.steps)) {
      await this.trainStep();
      if (t.evalEvery > 0 && this.step % t.evalEvery === 0) await this.evaluate();
      if (t.checkpointEvery > 0 && this.step % t.checkpointEvery === 0) await this.save();
    }
    if (t.evalEvery === 0 || this.step % t.evalEvery !== 0) await this.evaluate();
    if (t.checkpointEvery === 0 || this.step % t.checkpointEvery !== 0) await this.save();
  }

  destroy(): void {
    this.gpu.destroy();
  }
}
