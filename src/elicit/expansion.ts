// Expansion (Self-Instruct, the survey's "Expansion"): from seed demonstrations the teacher writes new
// instructions; each is kept only when it passes Self-Instruct's filters (3..150 words, no non-text modality, no
// leading punctuation) and its ROUGE-L F against every instruction in the pool (seeds + kept so far, this step's
// included) is below maxSimilarity (0.7); kept ones join the pool and are answered by the teacher. One step = one
// generation request (demos drawn from the seeds plus a few generated ones) + the answers of what it kept. The
// pool of generated instructions lives in the cursor (committed with the records). The generation request's
// usage is added to the first record of its step (so progress tokens/cost include it when anything was kept).
import { Rng } from '../util/rng.ts';
import type { Json, RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { instructionProblem, parseList, rougeL, wordTokens } from './text.ts';
import {
  addUsage, bool, bump, chatOptions, checkSampling, cursorInt, cursorObject, cursorStats, fail, intIn, numIn, NO_USAGE,
  parallel, provenanceFor, samplingParams, textList, usageOf, withDefaults,
  type ElicitStep, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy,
} from './types.ts';

export interface ExpansionConfig extends SamplingConfig {
  /** Seed instructions (the demonstrations). */
  seeds: string[];
  /** Instructions to generate. */
  target: number;
  /** Demonstrations per generation request. */
  demosPerPrompt: number;
  /** Of those, how many come from the generated pool once it has some (Self-Instruct: 2 of 8). */
  generatedDemos: number;
  /** New instructions asked for per request. */
  perRequest: number;
  /** Keep an instruction only if its ROUGE-L F against every pool instruction is below this. */
  maxSimilarity: number;
  minWords: number;
  maxWords: number;
  /** Generation requests at most (null = 5 × ⌈target / perRequest⌉ + 5). */
  maxRequests: number | null;
  /** Answer the kept instructions (false = records hold the instruction only). */
  label: boolean;
  generateTemperature: number;
  generateMaxTokens: number;
  templates: Record<'expansion.generate' | 'expansion.answer', string>;
}

export const EXPANSION_DEFAULTS = {
  seeds: [] as string[],
  target: 20,
  demosPerPrompt: 4,
  generatedDemos: 1,
  perRequest: 8,
  maxSimilarity: 0.7,
  minWords: 3,
  maxWords: 150,
  maxRequests: null,
  label: true,
  generateTemperature: 1,
  generateMaxTokens: 512,
  temperature: 0.7,
  maxTokens: 512,
  seed: null,
  templates: {},
};

function validate(input: unknown): ExpansionConfig {
  const where = 'expansion config';
  const c = withDefaults(input, EXPANSION_DEFAULTS, where);
  const demosPerPrompt = intIn(where, 'demosPerPrompt', c.demosPerPrompt, 1, 32);
  const minWords = intIn(where, 'minWords', c.minWords, 1, 1000);
  const maxWords = intIn(where, 'maxWords', c.maxWords, 1, 10_000);
  if (minWords > maxWords) fail(where, `minWords (${minWords}) must be ≤ maxWords (${maxWords})`);
  return {
    seeds: textList(where, 'seeds', c.seeds, 1, 10_000),
    target: intIn(where, 'target', c.target, 1, 100_000),
    demosPerPrompt,
    generatedDemos: intIn(where, 'generatedDemos', c.generatedDemos, 0, demosPerPrompt),
    perRequest: intIn(where, 'perRequest', c.perRequest, 1, 50),
    maxSimilarity: numIn(where, 'maxSimilarity', c.maxSimilarity, 0, 1),
    minWords,
    maxWords,
    maxRequests: c.maxRequests === null ? null : intIn(where, 'maxRequests', c.maxRequests, 1, 1_000_000),
    label: bool(where, 'label', c.label),
    generateTemperature: numIn(where, 'generateTemperature', c.generateTemperature, 0, 2),
    generateMaxTokens: intIn(where, 'generateMaxTokens', c.generateMaxTokens, 1, 100_000),
    ...checkSampling(where, c),
    templates: resolveTemplates(['expansion.generate', 'expansion.answer'] as const, c.templates, where),
  };
}

function maxRequests(c: ExpansionConfig): number {
  return c.maxRequests ?? 5 * Math.ceil(c.target / c.perRequest) + 5;
}

/** The generation request of round `round` given the generated pool so far (deterministic per seed and round). */
function generationRequest(c: ExpansionConfig, round: number, pool: readonly string[]): ChatMessage[] {
  const rng = new Rng(((c.seed ?? 0) ^ Math.imul(round + 1, 0x2545f491)) >>> 0);
  const pick = (from: readonly string[], n: number): string[] => {
    const idx = Array.from(from.keys());
    for (let i = idx.length - 1; i > 0; i--) { const j = rng.int(i + 1); [idx[i], idx[j]] = [idx[j]!, idx[i]!]; }
    return idx.slice(0, n).map((i) => from[i]!);
  };
  const fromPool = Math.min(c.generatedDemos, pool.length);
  const demos = [...pick(c.seeds, c.demosPerPrompt - fromPool), ...pick(pool, fromPool)];
  const list = demos.map((d, i) => `${i + 1}. ${d.replace(/\s*\n\s*/g, ' ')}`).join('\n');
  const content = renderTemplate(c.templates['expansion.generate'], { demos: list, count: c.perRequest, next: demos.length + 1 }, 'expansion.generate');
  return [{ role: 'user', content }];
}

function answerRequest(c: ExpansionConfig, instruction: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['expansion.answer'], { instruction }, 'expansion.answer') }];
}

async function preview(config: unknown, _store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const out: PreviewRequest[] = [];
  for (let round = 0; round < Math.min(count, maxRequests(c)); round++) {
    const o = chatOptions({ temperature: c.generateTemperature, maxTokens: c.generateMaxTokens, seed: c.seed }, round, undefined);
    out.push({
      template: 'expansion.generate',
      messages: generationRequest(c, round, []),
      options: { temperature: c.generateTemperature, maxTokens: c.generateMaxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: round > 0 ? 'later rounds also draw demonstrations from the instructions generated so far' : 'each kept instruction is then answered with the expansion.answer template',
    });
  }
  return out;
}

/** The instructions of `candidates` that pass the filters against `pool` (which grows with each kept one). */
export function filterInstructions(
  candidates: readonly string[],
  pool: string[][],
  c: Pick<ExpansionConfig, 'maxSimilarity' | 'minWords' | 'maxWords'>,
  stats: Record<string, number>,
): { instruction: string; similarity: number }[] {
  const kept: { instruction: string; similarity: number }[] = [];
  for (const cand of candidates) {
    if (instructionProblem(cand, c.minWords, c.maxWords)) { bump(stats, 'filtered'); continue; }
    const toks = wordTokens(cand);
    let sim = 0;
    for (const p of pool) {
      sim = Math.max(sim, rougeL(toks, p));
      if (sim >= c.maxSimilarity) break;
    }
    if (sim >= c.maxSimilarity) { bump(stats, 'tooSimilar'); continue; }
    pool.push(toks);
    kept.push({ instruction: cand, similarity: sim });
  }
  return kept;
}

async function step(cursor: Json, ctx: StepContext<ExpansionConfig>): Promise<ElicitStep> {
  const c = ctx.config;
  const cur = cursorObject(cursor, 'expansion');
  const round = cursorInt(cur, 'round', 0);
  const stats = cursorStats(cur);
  const generated = Array.isArray(cur.pool) ? cur.pool.filter((s): s is string => typeof s === 'string') : [];
  const gen = await ctx.chat(
    generationRequest(c, round, generated),
    chatOptions({ temperature: c.generateTemperature, maxTokens: c.generateMaxTokens, seed: c.seed }, round, ctx.signal),
  );
  const pool = [...c.seeds, ...generated].map(wordTokens);
  const candidates = parseList(gen.choices[0]?.text ?? '', c.perRequest * 2);
  bump(stats, 'candidates', candidates.length);
  const kept = filterInstructions(candidates, pool, c, stats).slice(0, c.target - generated.length);
  const answers = c.label
    ? await parallel(ctx.signal, kept.map((k, n) => (signal) => ctx.chat(answerRequest(c, k.instruction), chatOptions(c, generated.length + n, signal))))
    : [];
  const records: RecordInput[] = [];
  let genUsage = usageOf(gen);
  kept.forEach((k, n) => {
    const id = generated.length + n;
    const r = answers[n];
    const answer = r?.choices[0]?.text ?? '';
    if (c.label && answer.trim() === '') { bump(stats, 'emptyAnswer'); return; }
    const messages: ChatMessage[] = answerRequest(c, k.instruction);
    if (c.label) messages.push({ role: 'assistant', content: answer });
    const usage = addUsage(r ? usageOf(r) : NO_USAGE, genUsage);
    const params = {
      ...samplingParams(c), generate_temperature: c.generateTemperature, round, instruction_index: id,
      rouge_l_max: Math.round(k.similarity * 1e4) / 1e4, includes_generation_usage: genUsage !== NO_USAGE,
    };
    genUsage = NO_USAGE;
    const template = c.label ? templateId('expansion.answer', c.templates['expansion.answer']) : templateId('expansion.generate', c.templates['expansion.generate']);
    records.push({ key: `${ctx.jobId}:expansion:${id}`, messages, provenance: provenanceFor(ctx.teacher, 'expansion', template, params, usage, ctx.now()) });
  });
  const pool2 = [...generated, ...kept.map((k) => k.instruction)];
  const done = pool2.length >= c.target || round + 1 >= maxRequests(c);
  if (done && pool2.length < c.target) bump(stats, 'shortBy', c.target - pool2.length);
  return { records, nextCursor: { round: round + 1, pool: pool2, stats }, done, total: c.target, units: done ? c.target - generated.length : kept.length };
}

export const expansion: Strategy<ExpansionConfig> = { name: 'expansion', validate, preview, step };
