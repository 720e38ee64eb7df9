// Labeling (the survey's "Labeling", FLAN/Orca-style): the teacher answers each input of a given list, optionally
// under a system prompt and with a chain-of-thought instruction (Orca's explanation traces). One record per
// (input, answer): [system?, user, assistant]. Empty answers are skipped and counted (cursor.stats.emptyAnswer).
// Steps are sized from the teacher's maxConcurrency by default, so a step never leaves request slots empty.
import type { Json, RecordInput } from '../store/schema.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import {
  bool, bump, fail, chatOptions, checkInputs, checkSampling, cursorInt, cursorObject, cursorStats, inputsOf, intIn, parallel,
  provenanceFor, samplingParams, stepInputs, usageOf, withDefaults,
  type ElicitStep, type InputsFrom, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy, type TeacherLike,
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
   * Inputs per step (one commit); null = automatic: enough inputs for AUTO_BATCH_WAVES × the teacher's maxConcurrency
   * requests (a smaller step could never fill the teacher's slots; a step ends only when all of its requests have),
   * or 4 when the teacher has no maxConcurrency.
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

/** With batchSize null, a step holds this many rounds of the teacher's concurrency (the step's tail is paid once). */
export const AUTO_BATCH_WAVES = 2;
/** Inputs per step for a teacher that does not say how many requests it runs at once (e.g. a local model). */
const UNKNOWN_CONCURRENCY_BATCH = 4;

/** Inputs per step: the config's batchSize, or the automatic size for this teacher (at most 256 inputs). */
export function labelingBatchSize(c: Pick<LabelingConfig, 'batchSize' | 'answersPerInput'>, teacher: TeacherLike): number {
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

async function step(cursor: Json, ctx: StepContext<LabelingConfig>): Promise<ElicitStep> {
  const c = ctx.config;
  const inputs = stepInputs(c, 'labeling');
  const cur = cursorObject(cursor, 'labeling');
  const start = cursorInt(cur, 'next', 0);
  const stats = cursorStats(cur);
  const end = Math.min(inputs.length, start + labelingBatchSize(c, ctx.teacher));
  const jobs: { i: number; j: number }[] = [];
  for (let i = start; i < end; i++) for (let j = 0; j < c.answersPerInput; j++) jobs.push({ i, j });
  const results = await parallel(ctx.signal, jobs.map(({ i, j }) => async (signal) => {
    const { messages } = messagesFor(c, inputs[i]!);
    return ctx.chat(messages, chatOptions(c, i * c.answersPerInput + j, signal));
  }));
  const records: RecordInput[] = [];
  results.forEach((r, n) => {
    const { i, j } = jobs[n]!;
    const answer = r.choices[0]?.text ?? '';
    if (answer.trim() === '') { bump(stats, 'emptyAnswer'); return; }
    const { messages, template } = messagesFor(c, inputs[i]!);
    const params = { ...samplingParams(c), chain_of_thought: c.chainOfThought, input_index: i, answer_index: j, finish_reason: r.choices[0]!.finishReason };
    records.push({
      key: `${ctx.jobId}:labeling:${i}:${j}`,
      messages: [...messages, { role: 'assistant', content: answer }],
      provenance: provenanceFor(ctx.teacher, 'labeling', templateId(template, c.templates[template]), params, usageOf(r), ctx.now()),
    });
  });
  return { records, nextCursor: { next: end, stats }, done: end >= inputs.length, total: inputs.length, units: end - start };
}

export const labeling: Strategy<LabelingConfig> = { name: 'labeling', validate, preview, step };
