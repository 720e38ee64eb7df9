// Self-knowledge (the survey's "Self-Knowledge": the student's own outputs, filtered, become its training data):
// the student's K samples per prompt are kept when self-consistency agrees (their final answer is the majority
// answer, held by more than minAgreement of the samples: text.ts finalAnswer/majority) and/or when the teacher
// verifies them (a yes/no verdict parsed robustly from its untrusted text: text.ts parseYesNo). mode 'either'
// keeps a sample on either ground and asks the teacher only about samples self-consistency did not keep.
// One record per kept distinct sample: [user: prompt, assistant: sample]; provenance says how it was kept.
// A window (src/store/window.ts) whose item is one prompt.
import type { Json, RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage } from '../teacher/types.ts';
import { studentSamples } from './feedback.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { finalAnswer, majority, parseYesNo } from './text.ts';
import {
  bump, chatOptions, checkInputs, checkSampling, fail, inputsOf, intIn, legacyNext, NO_USAGE,
  numIn, parallel, provenanceFor, samplingParams, stepInputs, usageOf, withDefaults,
  type InputsFrom, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy,
} from './types.ts';

export const SELF_KNOWLEDGE_MODES = ['verify', 'consistency', 'either'] as const;
export type SelfKnowledgeMode = (typeof SELF_KNOWLEDGE_MODES)[number];

export interface SelfKnowledgeConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  samples: number;
  mode: SelfKnowledgeMode;
  /** The majority answer must be held by more than this fraction of the samples. */
  minAgreement: number;
  /** Prompts per commit. */
  batchSize: number;
  templates: Record<'self-knowledge.verify', string>;
}

export const SELF_KNOWLEDGE_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  samples: 5,
  mode: 'either' as SelfKnowledgeMode,
  minAgreement: 0.5,
  temperature: 0,
  maxTokens: 128,
  seed: null,
  batchSize: 2,
  templates: {},
};

function validate(input: unknown): SelfKnowledgeConfig {
  const where = 'self-knowledge config';
  const c = withDefaults(input, SELF_KNOWLEDGE_DEFAULTS, where);
  if (!(SELF_KNOWLEDGE_MODES as readonly unknown[]).includes(c.mode)) fail(where, `mode must be one of ${SELF_KNOWLEDGE_MODES.join(', ')}, got ${JSON.stringify(c.mode)}`);
  const mode = c.mode as SelfKnowledgeMode;
  const samples = intIn(where, 'samples', c.samples, 1, 64);
  if (mode !== 'verify' && samples < 2) fail(where, `self-consistency needs samples ≥ 2 (got ${samples}); use mode 'verify' for one sample`);
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    samples,
    mode,
    minAgreement: numIn(where, 'minAgreement', c.minAgreement, 0, 0.99),
    ...checkSampling(where, c),
    batchSize: intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(['self-knowledge.verify'] as const, c.templates, where),
  };
}

function verifyRequest(c: SelfKnowledgeConfig, prompt: string, response: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['self-knowledge.verify'], { prompt, response }, 'self-knowledge.verify') }];
}

async function preview(config: unknown, store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  if (c.mode === 'consistency') return [];
  const inputs = await inputsOf(c, store, 'self-knowledge preview');
  return inputs.slice(0, count).map((p, i) => {
    const o = chatOptions(c, i * c.samples, undefined);
    return {
      template: 'self-knowledge.verify',
      messages: verifyRequest(c, p, '[student sample]'),
      options: { temperature: c.temperature, maxTokens: c.maxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: c.mode === 'verify'
        ? `sent for each of the student's ${c.samples} samples`
        : 'sent only for samples that self-consistency does not keep',
    };
  });
}

async function onePrompt(ctx: StepContext<SelfKnowledgeConfig>, i: number, prompt: string, signal: AbortSignal, stats: Record<string, number>): Promise<RecordInput[]> {
  const c = ctx.config;
  // Duplicates count as votes, so they are kept here and removed only when writing records.
  if (!ctx.student) await studentSamples(undefined, prompt, c.samples, signal, stats, 'self-knowledge'); // throws: no sampler
  const raw: unknown = await ctx.student!(prompt, c.samples, signal);
  if (!Array.isArray(raw) || !raw.every((s) => typeof s === 'string')) fail('self-knowledge', 'the student sampler must return an array of strings');
  const samples = (raw as string[]).slice(0, c.samples);
  const valid = samples.filter((s) => s.trim() !== '');
  bump(stats, 'emptySample', samples.length - valid.length);
  const answers = valid.map(finalAnswer);
  const maj = c.mode === 'verify' || valid.length < 2 ? null : majority(answers);
  const agreed = maj !== null && maj.count > c.minAgreement * valid.length;
  if (c.mode !== 'verify' && !agreed) bump(stats, 'noMajority');
  const keptBy: (null | { how: 'consistency' | 'verify'; usage: typeof NO_USAGE })[] = valid.map((_, j) => (agreed && answers[j] === maj!.answer ? { how: 'consistency', usage: NO_USAGE } : null));
  const toVerify = c.mode === 'consistency' ? [] : valid.map((_, j) => j).filter((j) => keptBy[j] === null);
  const verdicts = await parallel(signal, toVerify.map((j) => (sig) => ctx.chat(verifyRequest(c, prompt, valid[j]!), chatOptions(c, i * c.samples + j, sig))));
  verdicts.forEach((r, n) => {
    const v = parseYesNo(r.choices[0]?.text ?? '');
    if (v === null) bump(stats, 'unparseableVerdict');
    else if (!v) bump(stats, 'rejected');
    else keptBy[toVerify[n]!] = { how: 'verify', usage: usageOf(r) };
  });
  const out: RecordInput[] = [];
  const seen = new Set<string>();
  const template = templateId('self-knowledge.verify', c.templates['self-knowledge.verify']);
  valid.forEach((s, j) => {
    const k = keptBy[j];
    if (!k) return;
    if (seen.has(s)) { bump(stats, 'duplicateSample'); return; }
    seen.add(s);
    const params: { [key: string]: Json } = { ...samplingParams(c), kept_by: k.how, samples: c.samples, input_index: i, sample_index: j };
    if (maj) { params.majority_answer = maj.answer.slice(0, 200); params.agreement = Math.round((maj.count / valid.length) * 1e4) / 1e4; }
    out.push({
      key: `${ctx.jobId}:self-knowledge:${i}:${j}`,
      messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: s }],
      provenance: provenanceFor(k.how === 'verify' ? ctx.teacher : 'self', 'self-knowledge', k.how === 'verify' ? template : 'self-consistency', params, k.usage, ctx.now()),
    });
  });
  return out;
}

export const selfKnowledge: Strategy<SelfKnowledgeConfig> = {
  name: 'self-knowledge',
  validate,
  preview,
  window: {
    items: (c) => stepInputs(c, 'self-knowledge').length,
    total: (c) => c.inputs.length,
    requestsPerItem: (c) => (c.mode === 'consistency' ? 1 : c.samples),
    batch: (c) => c.batchSize,
    legacyPrefix: legacyNext,
    // Item i: prompt i's samples, then the teacher's verdicts on those self-consistency did not keep (at once).
    item: async (i, ctx) => {
      const stats: Record<string, number> = {};
      const records = await onePrompt(ctx, i, stepInputs(ctx.config, 'self-knowledge')[i]!, ctx.signal!, stats);
      return { records, stats };
    },
  },
};
