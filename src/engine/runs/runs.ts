// The training runs of the EngineApi (src/protocol.ts), in the engine worker: plan a run (nothing stored), create
// it (snapshot of the dataset's ids, tokenizer trained or taken from the teacher, data checked), train it from its
// last checkpoint until done or paused, list/history/delete, and use its latest checkpoint: evaluate, generate,
// sample for the Data stage, export. One run trains at a time per run id in a tab (the page holds a Web Lock per
// run so two tabs never train one run). State lives in IndexedDB (run-store.ts), so a reload loses nothing but
// the steps after the last checkpoint.
import { ADAPTER_FORMATS, isAdapterFormat, type AdapterFormat } from '../../export/formats.ts';
import { exportModel, isExportFormat, EXPORT_FORMATS } from '../../export/index.ts';
import { exportRewardFolder } from '../../export/reward-folder.ts';
import type { JudgeFn } from './judge-reward.ts';
import { methodOf } from './methods.ts';
import { exportLoraGguf, exportPeftAdapter } from '../../export/lora.ts';
import { jsonFile } from '../../export/types.ts';
import { Generator, type GeneratorAdapters } from '../../model/generate.ts';
import { loraLayout, mergeLora, type LoraConfig } from '../../model/lora.ts';
import { GpuModel } from '../../model/gpu-model.ts';
import { shardRanges, SlabShards } from '../../model/slab-shards.ts';
import { CE_ONLY } from '../../train/step-trainer.ts';
import { countParams, paramLayout } from '../../model/params.ts';
import type { GpuContext } from '../../platform/gpu.ts';
import type { ChatMessage, StoredPair, StoredRecord } from '../../store/schema.ts';
import { newId } from '../../store/schema.ts';
import { openStore, type DistillStore } from '../../store/store.ts';
import { trainBpe } from '../../tokenizer/bpe.ts';
import { HfTokenizer } from '../../tokenizer/hf.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';
import { decodeCheckpoint, type Checkpoint } from '../../train/checkpoint.ts';
import type { ExportResultData } from '../export.ts';
import { heldFolder } from '../held-folders.ts';
import { isHeldOut, loadRunData, readSnapshot, RunDataChangedError, snapshotIds, storeTopK, stringToStudentId } from './data.ts';
import { crossShareOf } from './cross-data.ts';
import { answerText, chatTemplateFor, EOS_TOKEN, promptIds as promptIdsOf, recordFormat, recordText, stopIds, type RecordFormat } from './format.ts';
import { compareFormats, type FormatComparison } from './compare-formats.ts';
import { evaluateRun, type RunWeights } from './held-out.ts';
import { loadTeacherModel, planOf, resolveRun, type PlanDeps, type ResolvedRun } from './plan.ts';
import { CKPT, eosId, initialWeights, loraBase, OutOfMemoryError, runTokenizer, stripped, teacherRole, trainLoop, type FolderRole, type RunContext } from './runner.ts';
import { RunStore, type StoredRun } from './run-store.ts';
import type {
  EngineModel, EngineTeacher, EvalReport, GenerateRequest, GenerateResult, RunErrorCode, RunEvent, RunInfo, RunLog, RunPlan, RunSpec,
} from './types.ts';

/** Where picked model files are kept with a run: '<runId>:teacher:<path>', '<runId>:student:<path>', and a teacher
 *  mixture's other teachers '<runId>:teacher-<i>:<path>' (i ≥ 1; no role's prefix is another's). */
const folderKey = (runId: string, role: FolderRole, path = '') => `${runId}:${role}:${path}`;
/** Whether a run's folder of this role was picked and stored with it. */
function isStored(run: Stored, role: FolderRole): boolean {
  if (role === 'teacher') return !!run.teacherStored;
  if (role === 'student') return !!run.studentStored;
  return !!run.mixtureStored?.[Number(role.slice('teacher-'.length)) - 1];
}
/** Records planning pairs across tokenizers to show the share of exactly paired tokens. */
const CROSS_SHARE_RECORDS = 64;

interface Stored extends StoredRun {
  /** The teacher's / the pretrained student's files were picked: they are stored with the run under folderKey. */
  teacherStored?: boolean;
  studentStored?: boolean;
  /** The same for each of a teacher mixture's other teachers (spec.mixture.teachers[i] is role 'teacher-(i+1)'). */
  mixtureStored?: boolean[];
}

export interface RunsEngineOptions {
  runStore?: () => Promise<RunStore>;
  dataStore?: () => Promise<DistillStore>;
}

export class RunsEngine {
  private runStore?: Promise<RunStore>;
  private dataStore?: Promise<DistillStore>;
  private readonly active = new Map<string, { pause: boolean }>();
  private deviceLost: string | null = null;
  private watched = new WeakSet<GPUDevice>();

  constructor(private readonly gpu: () => Promise<GpuContext>, private readonly opts: RunsEngineOptions = {}) {}

  private runs(): Promise<RunStore> {
    this.runStore ??= (this.opts.runStore ?? (() => RunStore.open()))();
    return this.runStore;
  }

  private data(): Promise<DistillStore> {
    this.dataStore ??= (this.opts.dataStore ?? (() => openStore()))();
    return this.dataStore;
  }

  private async device(): Promise<GPUDevice> {
    const { device } = await this.gpu();
    if (!this.watched.has(device)) {
      this.watched.add(device);
      void device.lost.then((info) => { if (info.reason !== 'destroyed') this.deviceLost = info.message || 'unknown reason'; });
    }
    if (this.deviceLost) throw new Error(`the GPU device was lost (${this.deviceLost}): reload the page; training resumes from the last checkpoint`);
    return device;
  }

  private async ctx(): Promise<RunContext> {
    const [device, runs, data] = await Promise.all([this.device(), this.runs(), this.data()]);
    return {
      device, runs, data,
      folderFiles: async (run, role) => {
        if (!isStored(run as Stored, role)) return undefined;
        const out: Record<string, Uint8Array> = {};
        const prefix = folderKey(run.id, role);
        for (const k of await runs.blobKeys(prefix)) out[k.slice(prefix.length)] = (await runs.getBlob(k))!;
        return out;
      },
    };
  }

  private async getRun(id: string): Promise<Stored> {
    const run = await (await this.runs()).getRun(id);
    if (!run) throw new Error(`no run ${id} in this browser (deleted, or made in another browser profile)`);
    return run;
  }

  private planDeps(): PlanDeps {
    return {
      gpu: this.gpu,
      counts: async (id) => {
        const ds = await (await this.data()).getDataset(id);
        if (!ds) throw new Error(`run settings: no dataset ${id}: pick one of the datasets of step 2`);
        return ds.counts;
      },
      getRun: (id) => this.getRun(id),
      crossShare: async (datasetId, tok) => {
        const data = await this.data();
        const topk = await storeTopK(data, datasetId);
        const toStudent = this.toStudent.get(tok) ?? stringToStudentId(tok);
        this.toStudent.set(tok, toStudent);
        return crossShareOf(await data.getRecords(datasetId, { limit: CROSS_SHARE_RECORDS }), topk.rowsOf, topk.vocab, toStudent, tok);
      },
    };
  }

  /** Each planned student tokenizer's string → id map (a whole vocabulary decoded once, not at every replan). */
  private readonly toStudent = new WeakMap<TextTokenizer, Map<string, number>>();

  async planRun(spec: RunSpec, onProgress?: (m: string) => void): Promise<RunPlan> {
    return planOf(await resolveRun(spec, this.planDeps(), onProgress), this.gpu);
  }

  async createRun(spec: RunSpec, onProgress?: (e: RunEvent) => void): Promise<RunInfo> {
    const progress = (message: string, done?: number, total?: number) => onProgress?.({ kind: 'progress', message, ...(done !== undefined ? { done, total } : {}) });
    progress('checking the settings');
    const deps = this.planDeps();
    const resolved = await resolveRun(spec, deps, progress);
    const plan = await planOf(resolved, deps.gpu);
    if (!plan.ok) throw new Error(`the run cannot start: ${plan.problems.join('; ')}`);
    // The template resolved by planning (given, the start run's or the teacher's) is stored with the run.
    spec = { ...spec, ...(resolved.chatTemplate ? { chatTemplate: resolved.chatTemplate } : {}) };
    const data = await this.data();
    const snapshot = await snapshotIds(data, spec.datasetId);
    progress('encoding the data');
    const built = await loadRunData(data, { spec, snapshot, T: plan.train.seqLen }, (records, pairs) => makeTokenizer(resolved, spec, records, pairs, progress));
    const { tok } = built;
    const B = plan.train.batchSize;
    if (spec.method === 'rl' && spec.rewardRun) {
      // The reward model reads this run's tokens, laid out the same way: checked now, not at the first step.
      const rm = await this.getRun(spec.rewardRun);
      if (JSON.stringify(rm.tokenizer) !== JSON.stringify(tok.toJSON())) throw new Error(`the reward model ${rm.name} reads another tokenizer than this student: train the reward model from the same student (the same pretrained model or start run)`);
      if (JSON.stringify(recordFormat(rm.spec)) !== JSON.stringify(recordFormat(spec))) throw new Error(`the reward model ${rm.name} was trained on another record format (${rm.spec.format}) than this run's (${spec.format}): pick the same format`);
    }
    if (resolved.method.data === 'pairs') {
      if (built.pairs.length < B) throw new Error(`not enough preference pairs to train on: ${built.pairs.length} (after holding out every ${spec.heldOutEvery}th) for ${B} pairs a step; add pairs or lower the batch size`);
    } else if (built.rows.length < B) {
      // Every record left out for rows that are not the student's tokens: the tokenizers differ.
      const mismatch = built.stats.notes.some((n) => /teacher rows for \d+ answer tokens|the tokenizers differ/.test(n));
      const none = built.stats.topkRecords === 0 && !built.stats.crossTokens && mismatch ? ": the teacher's tokenizer is not the student's — pick the stored top-k across tokenizers, or SFT on the teacher's answers" : '';
      throw new Error(`not enough data: ${built.rows.length} rows of ${plan.train.seqLen + 1} tokens for a batch of ${B}${built.stats.topkSkipped ? ` (${built.stats.topkSkipped} records had no aligned top-k${none})` : ''}; add records, or lower the batch size or sequence length`);
    }
    if (built.evalRows.length === 0 && built.evalPairs.length < (resolved.method.trainer === 'reward' ? 1 : B)) built.stats.notes.push('no held-out data: nothing to evaluate on (hold out a smaller share, or add records)');
    // Without sample prompts of the user's, the student is sampled on the first held-out prompts (else training ones).
    if (spec.sampleEvery > 0 && spec.samplePrompts.length === 0) spec = { ...spec, samplePrompts: await defaultSamplePrompts(data, spec, snapshot) };
    const runs = await this.runs();
    const id = newId();
    const now = Date.now();
    // Picked files are stored with the run (a reload cannot pick them again); a served folder is fetched again.
    const picked = (m: EngineModel | undefined) => (!m || 'url' in m.source ? undefined : 'held' in m.source ? heldFolder(m.source.held) : m.source.files);
    const files = picked(spec.teacher), studentFiles = picked(spec.pretrained);
    const mixtureFiles = (spec.mixture?.teachers ?? []).map(picked);
    const folders: [FolderRole, Record<string, Uint8Array> | undefined, string][] = [
      ['teacher', files, 'the teacher'], ['student', studentFiles, 'the student'],
      ...mixtureFiles.map((f, i): [FolderRole, Record<string, Uint8Array> | undefined, string] => [teacherRole(i + 1), f, `the mixture teacher ${spec.mixture!.teachers[i]!.label}`]),
    ];
    for (const [role, f, who] of folders) {
      if (!f) continue;
      progress(`storing ${who}'s files with the run`);
      for (const [p, b] of Object.entries(f)) await runs.putBlob(folderKey(id, role, p), b, `${who}'s ${p} for run ${spec.name}`);
    }
    const bare = (m: EngineModel) => ({ label: m.label, source: { files: {} } });
    const mixture = spec.mixture && { ...spec.mixture, teachers: spec.mixture.teachers.map((t, i) => (mixtureFiles[i] ? bare(t) : t)) };
    const stored: Stored = {
      id, name: spec.name.trim(), createdAt: now, updatedAt: now, status: 'created',
      spec: { ...spec, ...(files ? { teacher: bare(spec.teacher!) } : {}), ...(studentFiles ? { pretrained: bare(spec.pretrained!) } : {}), ...(mixture ? { mixture } : {}) },
      model: plan.model, train: plan.train, params: countParams(plan.model), step: 0, checkpointStep: 0,
      data: built.stats, tokenizerVocab: tok.vocabSize, snapshot, tokenizer: tok.toJSON() as Stored['tokenizer'],
      ...(tok instanceof HfTokenizer ? { tokenizerConfig: { ...tok.config } } : {}), ...(files ? { teacherStored: true } : {}), ...(studentFiles ? { studentStored: true } : {}),
      ...(mixtureFiles.some(Boolean) ? { mixtureStored: mixtureFiles.map(Boolean) } : {}),
    };
    await runs.putRun(stored);
    return stripped(stored);
  }

  async runRun(runId: string, onEvent?: (e: RunEvent) => void, judge?: JudgeFn): Promise<RunInfo> {
    if (this.active.has(runId)) throw new Error('this run is already training in this tab');
    const state = { pause: false };
    this.active.set(runId, state);
    const emit = (e: RunEvent) => { try { onEvent?.(e); } catch { /* the page went away */ } };
    const runs = await this.runs();
    try {
      let run = await this.getRun(runId);
      if (run.status === 'done') return stripped(run);
      const ctx = await this.ctx();
      run = await runs.updateRun(runId, { status: 'running', error: undefined, errorCode: undefined });
      emit({ kind: 'status', run: stripped(run) });
      const result = await trainLoop(ctx, run, { emit, pauseRequested: () => state.pause, ...(judge ? { judge } : {}) });
      run = await runs.updateRun(runId, { status: result });
      emit({ kind: 'status', run: stripped(run) });
      return stripped(run);
    } catch (e) {
      const lost = this.deviceLost !== null;
      const message = lost ? `the GPU device was lost (${this.deviceLost}): reload the page, then press Resume — training continues from the last checkpoint` : (e as Error)?.message ?? String(e);
      const errorCode: RunErrorCode = lost ? 'device-lost' : e instanceof OutOfMemoryError ? 'out-of-memory' : e instanceof RunDataChangedError ? 'data-changed' : 'failed';
      const run = await runs.updateRun(runId, { status: lost ? 'paused' : 'failed', error: message, errorCode }).catch(() => undefined);
      if (run) emit({ kind: 'status', run: stripped(run) });
      throw e instanceof Error ? e : new Error(message);
    } finally {
      this.active.delete(runId);
    }
  }

  async pauseRun(runId: string): Promise<void> {
    const a = this.active.get(runId);
    if (a) a.pause = true;
  }

  async listRuns(): Promise<RunInfo[]> {
    return (await (await this.runs()).listRuns()).map(stripped);
  }

  async runHistory(runId: string): Promise<{ run: RunInfo; logs: RunLog[] }> {
    const run = await this.getRun(runId);
    return { run: stripped(run), logs: await (await this.runs()).logs(runId) };
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.active.has(runId)) throw new Error('this run is training: pause it first');
    await (await this.runs()).deleteRun(runId);
  }

  /** The latest checkpoint of a run. */
  private async checkpoint(run: StoredRun): Promise<Checkpoint> {
    const bytes = await (await this.runs()).checkpoints(run.id).get(CKPT);
    if (!bytes) throw new Error(`run ${run.name} has no checkpoint yet: train it for a few steps first`);
    return decodeCheckpoint(bytes, `run ${run.name} checkpoint`);
  }

  /** The latest checkpoint's weights of a run; a LoRA run's adapters merged into the base it started from. */
  private async weights(run: StoredRun, onProgress?: (m: string) => void): Promise<{ params: Float32Array; step: number }> {
    const c = await this.checkpoint(run);
    if (!run.train.lora) return { params: c.params, step: c.step };
    const base = await initialWeights(await this.ctx(), run, onProgress ?? (() => {}));
    if (!base) throw new Error(`run ${run.name}: a LoRA run needs the weights it started from, and it has none`);
    onProgress?.('merging the LoRA adapters into the base weights');
    return { params: mergeLora(run.model, base.params, run.train.lora, c.params), step: c.step };
  }

  async evaluate(req: { runId: string; teacher?: EngineTeacher }, onProgress?: (m: string) => void): Promise<EvalReport> {
    const run = await this.getRun(req.runId);
    return evaluateRun(await this.ctx(), run, await this.runWeights(run, onProgress), req.teacher, onProgress);
  }

  /** A run's latest weights as it trains them: whole, or a LoRA run's base (read tensor by tensor) and adapters. */
  private async runWeights(run: StoredRun, onProgress?: (m: string) => void): Promise<RunWeights> {
    if (!run.train.lora) return this.weights(run);
    const c = await this.checkpoint(run);
    return { step: c.step, base: await loraBase(await this.ctx(), run, onProgress ?? (() => {})), adapters: c.params };
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const t0 = performance.now();
    const device = await this.device();
    let tok: TextTokenizer, eos: number | undefined, weights: RunWeights, config, format: RecordFormat, lora: LoraConfig | undefined;
    if ('runId' in req.model) {
      const run = languageModelRun(await this.getRun(req.model.runId), 'write text');
      ({ tok, eos } = runTokenizer(run));
      weights = await this.runWeights(run);
      lora = run.train.lora;
      config = run.model;
      format = recordFormat(run.spec);
    } else {
      const imp = await loadTeacherModel(req.model.teacher.source, req.model.teacher.label);
      tok = imp.textTokenizer!;
      eos = eosId(tok, imp.special.eosToken);
      weights = { step: 0, params: imp.params };
      config = imp.config;
      const template = req.model.format === 'template' ? imp.special.chatTemplate ?? tok.chatTemplate : undefined;
      if (req.model.format === 'template' && !template) throw new Error(`generate: the teacher ${req.model.teacher.label} has no chat template`);
      format = template ? { kind: 'template', template } : req.model.format as 'continuation' | 'chat';
    }
    const promptIds = promptIdsOf([{ role: 'user', content: req.prompt }], format, tok);
    if (promptIds.length === 0) throw new Error('generate: the prompt is empty');
    const keep = Math.max(1, config.maxSeqLen - req.maxNewTokens);
    const ids = promptIds.slice(-keep);
    const maxNewTokens = Math.max(1, Math.min(req.maxNewTokens, config.maxSeqLen - ids.length));
    // The weights in buffers within the adapter's limits (shards); a LoRA run's base and adapters as a LoRA model holds
    // them (the smallest one: one row), which the generator reads with its adapters.
    const L = ids.length + maxNewTokens;
    let slab: SlabShards, holder: GpuModel | undefined, adapters: GeneratorAdapters | undefined;
    if ('adapters' in weights) {
      holder = new GpuModel(device, config, 1, 1, CE_ONLY, undefined, { lora: lora! });
      holder.uploadBase(weights.base);
      holder.uploadAdapters(weights.adapters);
      slab = holder.params;
      adapters = { lora: lora!, slab: holder.state.params };
    } else {
      const layout = paramLayout(config);
      slab = new SlabShards(device, shardRanges(layout.entries, layout.slabFloats, Math.floor(device.limits.maxBufferSize / 256) * 64), 'generate.params');
      slab.write(weights.params);
    }
    const gen = new Generator(device, config, slab, L, adapters);
    try {
      const out = await gen.generate(ids, { maxNewTokens, temperature: req.temperature, seed: req.seed ?? 0, ...(eos !== undefined ? { stopTokens: stopIds(format, tok, eos) } : {}) });
      return { text: answerText(tok.decode(out), format), ids: out, promptIds: ids, finishReason: out.length < maxNewTokens ? 'stop' : 'length', ms: performance.now() - t0 };
    } finally {
      gen.destroy();
      if (holder) holder.destroy();
      else slab.destroy();
    }
  }

  async sampleStudent(runId: string, prompt: string, k: number, opts: { maxNewTokens: number; temperature: number; seed: number }): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < k; i++) out.push((await this.generate({ model: { runId }, prompt, maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, seed: opts.seed + i })).text);
    return out;
  }

  /** Each GGUF storage of a run's latest checkpoint: the file's size and the held-out perplexity of the weights as stored. */
  async compareFormats(runId: string, onProgress?: (m: string) => void): Promise<FormatComparison> {
    const run = languageModelRun(await this.getRun(runId), 'be compared in GGUF formats');
    const weights = await this.weights(run);
    const { tok } = runTokenizer(run);
    const template = chatTemplateFor(recordFormat(run.spec));
    return compareFormats(await this.ctx(), run, weights, { config: run.model, params: weights.params, tokenizer: tok, ...(template ? { chatTemplate: template } : {}) }, onProgress);
  }

  /** A run's latest checkpoint in one export format, with training.json (configs, data, the held-out evaluation of these weights). */
  async exportRun(runId: string, format: string, name: string, onProgress?: (m: string) => void): Promise<ExportResultData> {
    if (!isExportFormat(format) && !isAdapterFormat(format)) throw new Error(`export: unknown format '${format}' (have: ${[...EXPORT_FORMATS, ...ADAPTER_FORMATS].join(', ')})`);
    const run = await this.getRun(runId);
    if (run.spec.method === 'reward') return this.exportRewardModel(run, format, name, onProgress);
    if (isAdapterFormat(format)) return this.exportAdapters(run, format, name);
    const { params, step } = await this.weights(run, onProgress);
    onProgress?.('evaluating the exported weights on the held-out data');
    const heldOut = await this.evaluate({ runId }, onProgress);
    const { tok } = runTokenizer(run);
    const { spec } = stripped(run);
    const record = {
      source: `run ${run.name} (${run.id})`, step, model: run.model, train: run.train,
      run: {
        ...spec, teacher: spec.teacher ? { label: spec.teacher.label } : undefined, pretrained: spec.pretrained ? { label: spec.pretrained.label } : undefined,
        // RL's judge by name only: its reference (an endpoint, a folder) stays on this machine.
        ...(spec.method === 'rl' && spec.judge ? { judge: { label: spec.judge.label, scoreMax: spec.judge.scoreMax ?? 10 } } : {}),
        mixture: spec.mixture ? { teachers: spec.mixture.teachers.map((t) => ({ label: t.label })), weights: spec.mixture.weights } : undefined,
      },
      ...(spec.pretrained ? { baseModel: spec.pretrained.label } : {}),
      data: run.data, heldOut, trainedBy: 'webgpu-distill (our WGSL kernels, in the browser)',
    };
    onProgress?.(`writing ${format}`);
    const template = chatTemplateFor(recordFormat(run.spec));
    const files = exportModel({ config: run.model, params, tokenizer: tok, ...(template ? { chatTemplate: template } : {}) }, format, [jsonFile('training.json', record)]);
    return { name, files, params: run.params };
  }

  /** A reward model run (latest checkpoint; LoRA adapters merged) as an HF *ForSequenceClassification folder, with
   *  training.json (configs, data, the last held-out pair evaluation). */
  private async exportRewardModel(run: StoredRun, format: string, name: string, onProgress?: (m: string) => void): Promise<ExportResultData> {
    if (format !== 'safetensors') throw new Error(`run ${run.name} is a reward model: it exports as a Hugging Face sequence-classification folder (pick safetensors); ${format} carries language models`);
    const { params, step } = await this.weights(run, onProgress);
    const head = (await this.checkpoint(run)).tail;
    if (!head) throw new Error(`run ${run.name}: its checkpoint has no score head`);
    const { tok } = runTokenizer(run);
    const record = {
      source: `run ${run.name} (${run.id})`, step, model: run.model, train: run.train, head: 'reward (score.weight on the last token)',
      ...(run.spec.pretrained ? { baseModel: run.spec.pretrained.label } : {}),
      data: run.data, heldOut: run.lastEval ?? null, trainedBy: 'webgpu-distill (our WGSL kernels, in the browser)',
    };
    onProgress?.('writing the reward model');
    const template = chatTemplateFor(recordFormat(run.spec));
    const files = [...exportRewardFolder({ config: run.model, params, tokenizer: tok, ...(template ? { chatTemplate: template } : {}) }, head), jsonFile('training.json', record)];
    return { name, files, params: run.params };
  }

  /** A LoRA run's adapters alone (latest checkpoint), for the base model it was trained on. */
  private async exportAdapters(run: StoredRun, format: AdapterFormat, name: string): Promise<ExportResultData> {
    const lora = run.train.lora;
    if (!lora) throw new Error(`run ${run.name} trained every weight, not LoRA adapters: export the model itself`);
    const c = await this.checkpoint(run);
    const baseModel = run.spec.pretrained?.label ?? `run ${run.spec.initFrom}`;
    const adapters = c.params;
    const x = { config: run.model, lora, params: adapters, baseModel };
    const files = format === 'lora-peft' ? exportPeftAdapter(x) : exportLoraGguf(x);
    return { name, files, params: loraLayout(run.model, lora).count };
  }
}

/** The run, when it is a language model (not a reward model, which scores answers and writes none). */
function languageModelRun(run: StoredRun, what: string): StoredRun {
  if (!methodOf(run.spec).generates) throw new Error(`run ${run.name} is a reward model: it scores answers and cannot ${what}; pick a run that trains a language model`);
  return run;
}

/** The student's tokenizer for a resolved run (a new BPE is trained on the training records' text now). */
function makeTokenizer(r: ResolvedRun, spec: RunSpec, records: StoredRecord[], pairs: StoredPair[], progress: (m: string, done?: number, total?: number) => void): { tok: TextTokenizer; eos: number } {
  let tok: TextTokenizer, eosName: string | null | undefined;
  const src = r.tokenizer;
  if (src.kind === 'run') tok = runTokenizer(src.run).tok;
  else if ('tok' in src) ({ tok, eosToken: eosName } = src);
  else {
    const format = recordFormat(spec);
    const texts = records.filter((_, i) => !isHeldOut(i, spec.heldOutEvery)).map((rec) => recordText(rec.messages, format));
    texts.push(...pairs.flatMap((p) => [recordText(p.prompt, format), p.chosen, p.rejected]));
    tok = trainBpe(texts, {
      vocabSize: src.vocabSize, specialTokens: [EOS_TOKEN],
      onProgress: (p) => (p.phase === 'merge' ? progress(`training the tokenizer: ${p.vocabSize} of ${p.targetVocabSize} tokens`, p.vocabSize, p.targetVocabSize) : progress(`counting words: ${p.words.toLocaleString('en')}`)),
    });
  }
  const eos = eosId(tok, eosName);
  if (eos === undefined) throw new Error(`the tokenizer has no end-of-text token ('${EOS_TOKEN}', or an eos_token in its tokenizer_config.json) to close answers with`);
  return { tok, eos };
}

/** Up to 3 prompts to sample the student on: the first user turns of held-out records (else of training ones, or of
 *  pairs), cut to 200 characters. */
async function defaultSamplePrompts(store: DistillStore, spec: RunSpec, snapshot: { records: number[]; pairs: number[] }): Promise<string[]> {
  const { records, pairs } = await readSnapshot(store, spec.datasetId, { records: snapshot.records.slice(0, 64), pairs: snapshot.pairs.slice(0, 64) });
  const first = (m: ChatMessage[]) => m.find((x) => x.role === 'user')?.content.trim().slice(0, 200) ?? '';
  const held = records.filter((_, i) => isHeldOut(i, spec.heldOutEvery)).map((r) => first(r.messages));
  const rest = [...records.filter((_, i) => !isHeldOut(i, spec.heldOutEvery)).map((r) => first(r.messages)), ...pairs.map((p) => first(p.prompt))];
  return [...new Set([...held, ...rest].filter(Boolean))].slice(0, 3);
}
