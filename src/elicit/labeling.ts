// Labeling (the survey's "Labeling", FLAN/Orca-style): the teacher answers each input of a given list, optionally
// under a system prompt and with a chain-of-thought instruction (Orca's explanation traces). One record per
// (input, answer): [system?, user, assistant]. Empty answers are skipped and counted (cursor.stats.emptyAnswer).
// Runs as a window (src/store/window.ts) whose item is one (input, answer) pair — one request: requests never wait
// for each other; commits hold batchSize inputs' answers (by default AUTO_BATCH_WAVES × the teacher's
// maxConcurrency requests), or whatever finished within the commit interval. Progress counts requests (records
// + empty answers): total = inputs × answersPerInput.
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import {
  bool, fail, chatOptions, checkInputs, checkSampling, cursorInt, inputsOf, intIn, provenanceFor, samplingParams, stepInputs,
  usageOf, withDefaults,
  type InputsFrom, type ItemResult, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy, type TeacherLike,
} from './types.ts';
import type { ChatMessage } from '../teacher/types.ts';

export interface LabelingConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  /** System prompt; null = none, or the Orca system prompt (template 'labeling.system') with chainOfThought. */
  system: string | null;
  /** Use the 'labeling.cot' template (ask for step-by-step reasoning) instead of 'labeling.user'. */
  chainOfThought: boolean;
  /** Teacher answers per input (each its own request and record). */
  answersPerInput: number;
  /**
   * Inputs per commit; null = automatic: enough inputs for AUTO_BATCH_WAVES × the teacher's maxConcurrency requests
   * (fewer, larger transactions; the window keeps every request slot busy whatever the size), or 4 when the teacher
   * has no maxConcurrency. A commit also happens when answers have waited the commit interval (1 s by default).
   */
  batchSize: number | null;
  templates: Record<LabelingTemplate, string>;
}

const NAMES = ['labeling.user', 'labeling.cot', 'labeling.system'] as const;
type LabelingTemplate = (typeof NAMES)[number];

export const LABELING_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  system: null,
  chainOfThought: false,
  answersPerInput: 1,
  temperature: 0.7,
  maxTokens: 512,
  seed: null,
  batchSize: null,
  templates: {},
};

/** With batchSize null, a commit holds this many rounds of the teacher's concurrency. */
export const AUTO_BATCH_WAVES = 2;
/** Inputs per step for a teacher that does not say how many requests it runs at once (e.g. a local model). */
const UNKNOWN_CONCURRENCY_BATCH = 4;

/** Inputs per step: the config's batchSize, or the automatic size for this teacher (at most 256 inputs). */
export function labelingBatchSize(c: Pick<LabelingConfig, 'batchSize' | 'answersPerInput'>, teacher: Pick<TeacherLike, 'settings'>): number {
  if (c.batchSize !== null) return c.batchSize;
  const cc = teacher.settings.maxConcurrency;
  if (typeof cc !== 'number' || !Number.isInteger(cc) || cc < 1) return UNKNOWN_CONCURRENCY_BATCH;
  return Math.min(256, Math.ceil((AUTO_BATCH_WAVES * cc) / c.answersPerInput));
}

function validate(input: unknown): LabelingConfig {
  const where = 'labeling config';
  const c = withDefaults(input, LABELING_DEFAULTS, where);
  if (c.system !== null && typeof c.system !== 'string') fail(where, 'system must be a string or null');
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    system: c.system as string | null,
    chainOfThought: bool(where, 'chainOfThought', c.chainOfThought),
    answersPerInput: intIn(where, 'answersPerInput', c.answersPerInput, 1, 16),
    ...checkSampling(where, c),
    batchSize: c.batchSize === null ? null : intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(NAMES, c.templates, where),
  };
}

function systemOf(c: LabelingConfig): string {
  if (c.system !== null) return c.system;
  return c.chainOfThought ? c.templates['labeling.system'] : '';
}

function messagesFor(c: LabelingConfig, input: string): { messages: ChatMessage[]; template: LabelingTemplate } {
  const template = c.chainOfThought ? 'labeling.cot' : 'labeling.user';
  const system = systemOf(c);
  const messages: ChatMessage[] = system === '' ? [] : [{ role: 'system', content: system }];
  messages.push({ role: 'user', content: renderTemplate(c.templates[template], { input }, template) });
  return { messages, template };
}

async function preview(config: unknown, store?: Parameters<Strategy<LabelingConfig>['preview']>[1], count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const inputs = await inputsOf(c, store, 'labeling preview');
  const out: PreviewRequest[] = [];
  for (let i = 0; i < inputs.length && out.length < count; i++) {
    for (let j = 0; j < c.answersPerInput && out.length < count; j++) {
      const { messages, template } = messagesFor(c, inputs[i]!);
      const o = chatOptions(c, i * c.answersPerInput + j, undefined);
      out.push({ template, messages, options: { temperature: c.temperature, maxTokens: c.maxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) } });
    }
  }
  return out;
}

/** Item i of the window: answer `i % answersPerInput` of input `⌊i / answersPerInput⌋` (one request, one record). */
async function item(i: number, ctx: StepContext<LabelingConfig>): Promise<ItemResult> {
  const c = ctx.config;
  const inputs = stepInputs(c, 'labeling');
  const input = Math.floor(i / c.answersPerInput);
  const j = i % c.answersPerInput;
  const { messages, template } = messagesFor(c, inputs[input]!);
  const r = await ctx.chat(messages, chatOptions(c, i, ctx.signal));
  const answer = r.choices[0]?.text ?? '';
  if (answer.trim() === '') return { records: [], stats: { emptyAnswer: 1 } };
  const params = { ...samplingParams(c), chain_of_thought: c.chainOfThought, input_index: input, answer_index: j, finish_reason: r.choices[0]!.finishReason };
  return {
    records: [{
      key: `${ctx.jobId}:labeling:${input}:${j}`,
      messages: [...messages, { role: 'assistant', content: answer }],
      provenance: provenanceFor(ctx.teacher, 'labeling', templateId(template, c.templates[template]), params, usageOf(r), ctx.now()),
    }],
  };
}

export const labeling: Strategy<LabelingConfig> = {
  name: 'labeling',
  validate,
  preview,
  window: {
    items: (c) => stepInputs(c, 'labeling').length * c.answersPerInput, // no inputs: the job fails, naming why
    total: (c) => c.inputs.length * c.answersPerInput,
    // A commit holds batchSize inputs' answers (automatic: AUTO_BATCH_WAVES × the teacher's concurrency requests).
    batch: (c, concurrency) => labelingBatchSize(c, { settings: { model: '', baseURL: '', maxConcurrency: concurrency } }) * c.answersPerInput,
    legacyPrefix: (state, c) => {
      const next = cursorInt(state, 'next', 0); // the step version's cursor counted inputs
      delete state.next;
      return next * c.answersPerInput;
    },
    item,
  },
};
