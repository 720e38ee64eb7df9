// The vocabulary of training runs in the app: what the Train stage asks for (RunSpec), what a stored run is
// (RunInfo), what it logs while it trains (RunLog), what planning says before anything starts (RunPlan), and the
// results of evaluation and generation. Plain data only: every type crosses the worker boundary (comlink) and is
// stored in IndexedDB (src/engine/runs/run-store.ts).
import type { RlSettings } from '../../train/rl-settings.ts';
import type { Json } from '../../store/schema.ts';
import type { ModelConfig } from '../../model/config.ts';
import type { TrainConfig } from '../../train/config.ts';
import type { EvalLog, EventLog, StepLog } from '../../train/step-trainer.ts';

/** An HF Llama folder the engine reads itself: served at a URL (ending in '/'), picked files by path, or picked files
 *  the engine already holds (src/engine/held-folders.ts: sent once, then named by key). */
export type ModelFolderSource = { url: string } | { files: Record<string, Uint8Array> } | { held: string };

/** A model folder the engine reads (an HF Llama folder): a teacher it runs on the GPU (dense-logit KD, on-policy
 *  scoring, evaluation), or a pretrained student it fine-tunes. */
export interface EngineModel {
  /** Shown to the user and stored with the run, e.g. 'brown-teacher'. */
  label: string;
  source: ModelFolderSource;
}

export type EngineTeacher = EngineModel;

/**
 * Token-level KD from a weighted mixture of teachers (kd with kdSource 'dense', and on-policy): the student learns
 * Σ_i w_i softmax(z_i/τ) over spec.teacher and these (src/train/teacher-mixture.ts). Every teacher shares the
 * student's tokenizer, like the single dense teacher.
 */
export interface TeacherMixture {
  /** The teachers beside spec.teacher, in order. */
  teachers: EngineTeacher[];
  /** One weight per teacher, spec.teacher's first: weights.length = 1 + teachers.length, each ≥ 0, summing to > 0
   *  (normalised to 1). */
  weights: number[];
}

/** The training methods (src/engine/runs/methods.ts holds what each needs and does). */
export const RUN_METHODS = ['sft', 'kd', 'dpo', 'ipo', 'on-policy', 'reward', 'rl'] as const;
export type RunMethod = (typeof RUN_METHODS)[number];

/**
 * How chat records become token sequences (src/engine/runs/format.ts):
 *   continuation — a base LM's view: the prompt's text, then the answer's text straight after it (what the local
 *                  teacher does for a model without a chat template), then the end-of-text token;
 *   chat         — the plain chat template of src/export/dataset-text.ts (`<|user|>\n…\n<eos><|assistant|>\n…`),
 *                  saved with the student so its exports render prompts the same way;
 *   template     — a model family's own Jinja chat template: RunSpec.chatTemplate, or the teacher's
 *                  (tokenizer_config.json `chat_template`) when that is not given; saved with the student.
 * Only the assistant's tokens (and what closes them) are trained; the prompt is context.
 */
export const RUN_FORMATS = ['continuation', 'chat', 'template'] as const;
export type RunFormat = (typeof RUN_FORMATS)[number];

export type TokenizerChoice =
  /** A byte-level BPE trained on the run's training records (vocabSize includes the special token). */
  | { kind: 'bpe'; vocabSize: number }
  /** The teacher's own tokenizer.json (needs spec.teacher): required for logit-level KD. */
  | { kind: 'teacher' };

/** kd: where the teacher's distributions come from — the dataset's stored top-k rows, or the teacher model run on
 *  the fly (dense logits, needs spec.teacher). */
/** The teacher signal of token-level KD: stored top-k rows in the student's tokens, stored top-k rows of a teacher
 *  whose tokenizer differs (paired by text: exact KL where the tokens match, ULD where they start together), or the
 *  teacher model's dense logits. */
export type KdSource = 'store-topk' | 'cross-topk' | 'dense';

/** on-policy: GKD's λ (share of steps on the student's own samples) and how the student samples. */
export interface OnPolicySettings {
  lambda: number;
  maxNewTokens: number;
  temperature: number;
}

/** What every method's spec has. */
export interface RunSpecBase {
  name: string;
  datasetId: string;
  /** A student preset (src/model/config.ts PRESETS) and overrides; vocabSize comes from the tokenizer. Ignored for a
   *  pretrained student. */
  preset: string;
  /** A pretrained student: its folder gives the architecture, the starting weights, the tokenizer and the chat
   *  template (the tokenizer choice and preset are ignored). Absent: a new model of the preset. */
  pretrained?: EngineModel;
  modelOverrides?: Partial<Omit<ModelConfig, 'vocabSize'>>;
  tokenizer: TokenizerChoice;
  format: RunFormat;
  /** format 'template': the Jinja chat template (absent: the teacher's own; the run stores the one it used). */
  chatTemplate?: string;
  teacher?: EngineTeacher;
  /** kd from dense logits and on-policy: more teachers, mixed with spec.teacher by weight (absent: spec.teacher
   *  alone). */
  mixture?: TeacherMixture;
  /** TrainConfig keys (batchSize, seqLen, steps, lr, warmupSteps, objective, temperature, kdWeight, ceWeight, …). */
  train: Partial<TrainConfig>;
  /** The run whose weights start this one (and, for dpo/ipo, stay as the frozen reference); none: random init. */
  initFrom?: string;
  /** Sample generations every N steps (0 = never) for these prompts. */
  sampleEvery: number;
  samplePrompts: string[];
  /** Every Nth record (and pair) of the dataset is held out for evaluation. */
  heldOutEvery: number;
}

/** What the Train stage asks for: the common settings and the method's own, discriminated by `method`. */
export type RunSpec =
  | (RunSpecBase & { method: 'sft' })
  | (RunSpecBase & { method: 'kd'; kdSource: KdSource })
  | (RunSpecBase & { method: 'dpo'; /** β of the pair loss. */ pairBeta: number })
  | (RunSpecBase & { method: 'ipo'; pairBeta: number })
  | (RunSpecBase & { method: 'on-policy'; onPolicy: OnPolicySettings })
  /** A reward model on the dataset's preference pairs (Bradley–Terry; every pair must be won by `rewardMargin`, default 0). */
  | (RunSpecBase & { method: 'reward'; rewardMargin?: number })
  /** RL (GRPO/RLOO) of the student on the records' prompts, rewarded by the reward model trained by run `rewardRun`
   *  or by the teacher as a judge (`judge`): one of the two. */
  | (RunSpecBase & { method: 'rl'; rewardRun?: string; judge?: RlJudge; rl: RlSettings });

/** RL's judge: the teacher that grades each answer 1..scoreMax (default 10) — found again in the page by `ref` (a
 *  job teacher's reference: never a key) — and its name. */
export interface RlJudge {
  ref: { [k: string]: Json };
  label: string;
  scoreMax?: number;
}

/** The spec of one method. */
export type SpecOf<M extends RunMethod> = Extract<RunSpec, { method: M }>;

export type RunStatus = 'created' | 'running' | 'paused' | 'done' | 'failed';

/** What a run trains on, counted when it was created. */
export interface RunDataStats {
  trainRecords: number;
  heldOutRecords: number;
  trainTokens: number;
  /** Target (assistant) tokens of the held-out records: what the held-out evaluation measures. */
  heldOutTokens: number;
  /** Target (assistant) tokens of the training records. */
  targetTokens: number;
  trainPairs: number;
  heldOutPairs: number;
  /** kd from stored top-k: records whose rows matched the student's tokens, and those left out (with why). */
  topkRecords?: number;
  topkSkipped?: number;
  /** kd across tokenizers: the aligned answers' tokens by how they learn from the teacher (cross-align.ts). */
  crossTokens?: { exact: number; uld: number; none: number };
  notes: string[];
}

/**
 * Why a run stopped, for code that acts on it (without reading the text): the GPU device was lost (reload, then
 * Resume), the GPU ran out of memory (smaller batch, sequence or model), the run's data is gone or changed (start a
 * new run), or anything else the training raised.
 */
export type RunErrorCode = 'device-lost' | 'out-of-memory' | 'data-changed' | 'failed';

export interface RunInfo {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  status: RunStatus;
  /** Why it failed (status 'failed'), or what stopped it. Plain text. */
  error?: string;
  errorCode?: RunErrorCode;
  spec: RunSpec;
  model: ModelConfig;
  train: TrainConfig;
  params: number;
  /** Last step logged, and the step of the checkpoint a resume starts from. */
  step: number;
  checkpointStep: number;
  data: RunDataStats;
  lastEval?: EvalLog;
  /** The tokenizer's vocabulary size (the model's vocabSize may be padded above it). */
  tokenizerVocab: number;
}

/** A step of a run: the trainer's StepLog, plus what on-policy steps add and the time left. */
export interface RunStepLog extends StepLog {
  /** on-policy: whether this step trained on the student's own samples. */
  onPolicy?: boolean;
  /** Estimated time to the run's last step, ms. */
  etaMs?: number;
}

export interface SampleLog {
  kind: 'sample';
  step: number;
  samples: { prompt: string; text: string }[];
}

export type RunLog = RunStepLog | EvalLog | EventLog | SampleLog;

/** What a running run reports to the page: its logs as they happen, its status, and preparation progress. */
export type RunEvent = RunLog | { kind: 'status'; run: RunInfo } | { kind: 'progress'; message: string; done?: number; total?: number };

export interface MemoryEstimate {
  /** GPU bytes a training step allocates (parameters, gradients, AdamW moments, activations, batch, teacher). */
  bytes: number;
  /** The largest single buffer, checked against maxBufferSize / maxStorageBufferBindingSize. */
  largestBuffer: number;
  parts: { name: string; bytes: number }[];
}

/** planRun: the run as it would start, checked before anything is stored. */
export interface RunPlan {
  model: ModelConfig;
  train: TrainConfig;
  params: number;
  memory: MemoryEstimate;
  /** LoRA: the parameters it trains (the adapters), and what full fine-tuning would need instead. */
  lora?: { trainedParams: number; fullMemory: MemoryEstimate };
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  /** False when a problem stops the run (listed in `problems`, each saying what to change). */
  ok: boolean;
  problems: string[];
  warnings: string[];
  /** Records and pairs in the dataset, and what the method needs of them. */
  dataset: { records: number; pairs: number; topk: number; topkTokens: number };
  /** How many records (or pairs, for dpo/ipo) every-Nth holding out sets aside for evaluation. */
  heldOut: number;
  /** Token-level KD with this teacher: whether the student's tokens are the teacher's (checked on every id and on
   *  probe texts), and when they are not, what to do instead. */
  alignment?: { aligned: boolean; message: string };
  /** When token-level KD is impossible for this pair: train by SFT on the teacher's answers (SeqKD) instead. */
  offerSeqKd?: boolean;
  /** Stored top-k KD whose rows are not the student's tokens: KD across tokenizers (kdSource 'cross-topk') is offered. */
  offerCross?: boolean;
  /** KD across tokenizers, the student's tokenizer known: how the dataset's first answers' tokens pair (exact, ULD,
   *  label only) and how many answers could not be aligned. */
  crossShare?: { exact: number; uld: number; none: number; answers: number; unaligned: number };
  /** Full fine-tuning of a trained student does not fit (the largest buffer or the memory budget): LoRA is offered. */
  offerLora?: boolean;
}

export interface EvalReport {
  /** The run evaluated ('' for the teacher alone) and the step of its checkpoint. */
  runId: string;
  step: number;
  /** Held-out cross-entropy per target token and its perplexity: absent when no held-out token was evaluated (then
   *  `tokens` is 0 and a note says why). */
  loss?: number;
  ppl?: number;
  tokens: number;
  /** Against the teacher (same tokenizer): KL(teacher ‖ student) per target token and top-1 agreement. */
  klToTeacher?: number;
  top1Agreement?: number;
  /** The teacher's own held-out loss on the same tokens (same tokenizer only). A run with a teacher mixture: the
   *  mixture's (klToTeacher and top1Agreement above are against the mixture too, at τ = 1). */
  teacher?: { label: string; loss: number; ppl: number };
  /** A run with a teacher mixture: the same measures against each of its teachers, spec.teacher's first, with the
   *  normalised weight it had in the mixture. */
  perTeacher?: TeacherEval[];
  /** dpo/ipo runs: held-out preference accuracy. */
  pairAccuracy?: number;
  notes: string[];
  ms: number;
}

/** Evaluation against one teacher of a mixture: KL(teacher ‖ student) per target token, top-1 agreement, and the
 *  teacher's own held-out loss and perplexity on the same tokens. */
export interface TeacherEval {
  label: string;
  weight: number;
  klToTeacher: number;
  top1Agreement: number;
  loss: number;
  ppl: number;
}

export interface GenerateRequest {
  /** A run's latest checkpoint, or a teacher folder. */
  model: { runId: string } | { teacher: EngineTeacher; format: RunFormat };
  prompt: string;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  seed?: number;
}

export interface GenerateResult {
  text: string;
  ids: number[];
  promptIds: number[];
  finishReason: 'stop' | 'length';
  ms: number;
}
