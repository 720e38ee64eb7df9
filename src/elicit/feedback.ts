// Feedback (the survey's "Feedback", RLAIF / UltraFeedback-style): the student's K samples per prompt (a sampler
// passed in by the caller: the GPU student later, a stub in tests) are graded by the teacher with a rubric; the
// score 1..max is parsed robustly from the teacher's untrusted text (text.ts parseScore). A sample whose grade is
// unparseable is skipped and counted; the best and the worst graded samples make one preference pair (ties and
// prompts with fewer than two graded samples are skipped and counted). Pairs are committed with the cursor.
// A window (src/store/window.ts) whose item is one prompt (its samples, then its grades at once).
import type { PairInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { parseScore } from './text.ts';
import {
  addUsage, bump, chatOptions, checkInputs, checkSampling, ElicitError, inputsOf,
  intIn, legacyNext, parallel, provenanceFor, samplingParams, stepInputs, usageOf, withDefaults,
  type InputsFrom, type ItemResult, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy, type StudentSampler,
} from './types.ts';

export interface FeedbackConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  /** Student samples per prompt (K). */
  samples: number;
  /** Top of the score scale (scores are integers 1..scoreMax). */
  scoreMax: number;
  /** Prompts per commit. */
  batchSize: number;
  templates: Record<'feedback.grade', string>;
}

export const FEEDBACK_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  samples: 4,
  scoreMax: 10,
  temperature: 0,
  maxTokens: 256,
  seed: null,
  batchSize: 2,
  templates: {},
};

function validate(input: unknown): FeedbackConfig {
  const where = 'feedback config';
  const c = withDefaults(input, FEEDBACK_DEFAULTS, where);
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    samples: intIn(where, 'samples', c.samples, 2, 64),
    scoreMax: intIn(where, 'scoreMax', c.scoreMax, 2, 100),
    ...checkSampling(where, c),
    batchSize: intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(['feedback.grade'] as const, c.templates, where),
  };
}

function gradeRequest(c: FeedbackConfig, prompt: string, response: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['feedback.grade'], { prompt, response, max: c.scoreMax }, 'feedback.grade') }];
}

async function preview(config: unknown, store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const inputs = await inputsOf(c, store, 'feedback preview');
  return inputs.slice(0, count).map((p, i) => {
    const o = chatOptions(c, i * c.samples, undefined);
    return {
      template: 'feedback.grade',
      messages: gradeRequest(c, p, '[student sample]'),
      options: { temperature: c.temperature, maxTokens: c.maxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: `sent once for each of the student's ${c.samples} samples, which replace "[student sample]" at run time`,
    };
  });
}

/** Calls the student and checks what it returns: unique non-empty strings (the rest counted in `stats`). */
export async function studentSamples(student: StudentSampler | undefined, prompt: string, k: number, signal: AbortSignal, stats: Record<string, number>, who: string): Promise<string[]> {
  if (!student) throw new ElicitError(`${who} needs the student's sampler: pass runElicitJob(..., { student: (prompt, k) => samples })`);
  const got: unknown = await student(prompt, k, signal);
  if (!Array.isArray(got) || !got.every((s) => typeof s === 'string')) throw new ElicitError(`${who}: the student sampler must return an array of strings`);
  const out: string[] = [];
  for (const s of got.slice(0, k) as string[]) {
    if (s.trim() === '') bump(stats, 'emptySample');
    else if (out.includes(s)) bump(stats, 'duplicateSample');
    else out.push(s);
  }
  return out;
}

/** Item i of the window: prompt i's student samples, graded at once; the best and worst make one pair. */
async function item(i: number, ctx: StepContext<FeedbackConfig>): Promise<ItemResult> {
  const c = ctx.config;
  const prompt = stepInputs(c, 'feedback')[i]!;
  const stats: Record<string, number> = {};
  const template = templateId('feedback.grade', c.templates['feedback.grade']);
  const signal = ctx.signal!;
  const samples = await studentSamples(ctx.student, prompt, c.samples, signal, stats, 'feedback');
  const grades = await parallel(signal, samples.map((s, j) => (sig) => ctx.chat(gradeRequest(c, prompt, s), chatOptions(c, i * c.samples + j, sig))));
  const scored: { text: string; score: number }[] = [];
  grades.forEach((g, j) => {
    const p = parseScore(g.choices[0]?.text ?? '', c.scoreMax);
    if (p.score === null) bump(stats, 'unparseableScore');
    else scored.push({ text: samples[j]!, score: p.score });
  });
  if (scored.length < 2) { bump(stats, 'tooFewScored'); return { records: [], stats }; }
  let best = scored[0]!;
  let worst = scored[0]!;
  for (const s of scored) {
    if (s.score > best.score) best = s;
    if (s.score < worst.score) worst = s;
  }
  if (best.score === worst.score) { bump(stats, 'tie'); return { records: [], stats }; }
  const params = { ...samplingParams(c), samples: c.samples, score_max: c.scoreMax, chosen_score: best.score, rejected_score: worst.score, scores: scored.map((s) => s.score), input_index: i };
  const pair: PairInput = {
    key: `${ctx.jobId}:feedback:${i}`,
    prompt: [{ role: 'user', content: prompt }],
    chosen: best.text,
    rejected: worst.text,
    provenance: provenanceFor(ctx.teacher, 'feedback', template, params, addUsage(...grades.map(usageOf)), ctx.now()),
  };
  return { records: [], pairs: [pair], stats };
}

export const feedback: Strategy<FeedbackConfig> = {
  name: 'feedback',
  validate,
  preview,
  window: {
    items: (c) => stepInputs(c, 'feedback').length,
    total: (c) => c.inputs.length,
    requestsPerItem: (c) => c.samples,
    batch: (c) => c.batchSize,
    legacyPrefix: legacyNext,
    item,
  },
};
