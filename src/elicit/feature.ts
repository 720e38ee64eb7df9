// Feature knowledge (the survey's "Feature": the teacher's output distributions, for token-level KD): the teacher
// answers each input with top_logprobs (≤ 20) and every generated token's top-k (ids + logprobs, topk.ts codec)
// is attached to the record, committed in the same transaction as the record and the cursor. A server that
// returns no logprobs fails the job with a clear error (sequence-level strategies still work there).
//
// Token ids: the teacher's tokens arrive as strings, so ids index a token table of the teacher's own token
// strings, kept in the job's cursor as `cursor.vocab: string[]` (id = position; committed atomically with the rows
// that use it, so every stored id resolves). One table per dataset: a new feature job starts from the table of the
// dataset's earlier feature jobs (datasetVocab) and extends it; a second feature job on a dataset is refused
// while an earlier one is not done. Equal strings share an id: alternatives that display alike (e.g. byte tokens
// shown as U+FFFD) are merged by log-sum-exp; the sampled token is added to its row when not among the top.
// A window (src/store/window.ts) whose item is one input; ids are given when items are committed (in input order
// within a commit), so with out-of-order commits ids follow commit order rather than input order.
// Logprobs are clamped to ≥ -1000 (a finite f32 for the codec). Records' params.token_table names the job.
import { encodeTopK, packTopKRows } from '../store/topk.ts';
import { datasetVocab, jobVocab } from '../store/topk-table.ts';
import type { Json, RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage, ChatResult, TokenLogprob } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import {
  bool, chatOptions, checkInputs, checkSampling, ElicitError, fail,
  inputsOf, intIn, legacyNext, provenanceFor, samplingParams, stepInputs, usageOf, withDefaults,
  type InputsFrom, type ItemResult, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy,
} from './types.ts';

export interface FeatureConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  system: string | null;
  /** Alternatives per position (1..20). */
  topLogprobs: number;
  /** Add the sampled token to its row when it is not among the top alternatives. */
  includeSampled: boolean;
  /** Inputs per commit. */
  batchSize: number;
  templates: Record<'feature.user', string>;
}

export const FEATURE_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  system: null,
  topLogprobs: 20,
  includeSampled: true,
  temperature: 0.7,
  maxTokens: 256,
  seed: null,
  batchSize: 4,
  templates: {},
};

const LOGPROB_FLOOR = -1000;

function validate(input: unknown): FeatureConfig {
  const where = 'feature config';
  const c = withDefaults(input, FEATURE_DEFAULTS, where);
  if (c.system !== null && typeof c.system !== 'string') fail(where, 'system must be a string or null');
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    system: c.system as string | null,
    topLogprobs: intIn(where, 'topLogprobs', c.topLogprobs, 1, 20),
    includeSampled: bool(where, 'includeSampled', c.includeSampled),
    ...checkSampling(where, c),
    batchSize: intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(['feature.user'] as const, c.templates, where),
  };
}

function messagesFor(c: FeatureConfig, input: string): ChatMessage[] {
  const m: ChatMessage[] = c.system ? [{ role: 'system', content: c.system }] : [];
  m.push({ role: 'user', content: renderTemplate(c.templates['feature.user'], { input }, 'feature.user') });
  return m;
}

async function preview(config: unknown, store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const inputs = await inputsOf(c, store, 'feature preview');
  return inputs.slice(0, count).map((input, i) => {
    const o = chatOptions(c, i, undefined);
    return {
      template: 'feature.user',
      messages: messagesFor(c, input),
      options: { temperature: c.temperature, maxTokens: c.maxTokens, topLogprobs: c.topLogprobs, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
    };
  });
}

async function init(store: DistillStore, datasetId: string): Promise<Json> {
  const busy = (await store.listJobs(datasetId)).find((j) => j.kind === 'elicit:feature' && j.status !== 'done');
  if (busy) {
    throw new ElicitError(
      `dataset "${datasetId}" already has a feature job (${busy.id}, ${busy.status}) that is not done: finish or delete it first ` +
        '(feature jobs of one dataset share one token table and must run one after the other)',
    );
  }
  return { items: 0, vocab: await datasetVocab(store, datasetId), stats: {} };
}

/** One encoded row per token; new token strings are appended to `vocab` (and `index`). */
export function tokenRows(tokens: TokenLogprob[], vocab: string[], index: Map<string, number>, includeSampled: boolean): Uint8Array[] {
  const idOf = (s: string): number => {
    let id = index.get(s);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(s);
      index.set(s, id);
    }
    return id;
  };
  return tokens.map((t) => {
    const byId = new Map<number, number>();
    for (const a of t.top) {
      const id = idOf(a.token);
      const lp = Math.max(LOGPROB_FLOOR, a.logprob);
      const old = byId.get(id);
      byId.set(id, old === undefined ? lp : logAddExp(old, lp));
    }
    if (includeSampled || byId.size === 0) {
      const id = idOf(t.token);
      if (!byId.has(id)) byId.set(id, Math.max(LOGPROB_FLOOR, t.logprob));
    }
    const ids = Uint32Array.from(byId.keys());
    const lps = Float32Array.from(byId.values(), (v) => Math.min(0, v));
    return encodeTopK(ids, lps, ids.length);
  });
}

function logAddExp(a: number, b: number): number {
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

function noLogprobs(r: ChatResult): never {
  throw new ElicitError(
    `feature: the teacher returned no token log-probabilities (${r.logprobsNote ?? 'logprobsAvailable is false'}). ` +
      "Feature (token-level) elicitation needs a server that returns logprobs; use 'labeling' for sequence-level KD.",
  );
}

/** Item i of the window: input i answered with top_logprobs. The rows get their token ids at commit time. */
async function item(i: number, ctx: StepContext<FeatureConfig>): Promise<ItemResult> {
  const c = ctx.config;
  const input = stepInputs(c, 'feature')[i]!;
  const r = await ctx.chat(messagesFor(c, input), { ...chatOptions(c, i, ctx.signal), topLogprobs: c.topLogprobs, stream: true });
  if (!r.logprobsAvailable) noLogprobs(r);
  const choice = r.choices[0];
  const tokens = choice?.tokens ?? [];
  if (!choice || choice.text.trim() === '' || tokens.length === 0) return { records: [], stats: { emptyAnswer: 1 } };
  const messages: ChatMessage[] = [...messagesFor(c, input), { role: 'assistant', content: choice.text }];
  const key = `${ctx.jobId}:feature:${i}`;
  const params = { ...samplingParams(c), top_logprobs: c.topLogprobs, input_index: i, token_table: `job:${ctx.jobId}`, finish_reason: choice.finishReason };
  const template = templateId('feature.user', c.templates['feature.user']);
  const record: RecordInput = { key, messages, provenance: provenanceFor(ctx.teacher, 'feature', template, params, usageOf(r), ctx.now()) };
  return { records: [record], data: { key, turn: messages.length - 1, tokens } };
}

/**
 * At commit time, in input order: the committed items' tokens get ids in the token table (cursor.vocab, extended
 * here), so the table is always committed in the same transaction as the first rows that use its new entries.
 */
function commit(items: { index: number; result: ItemResult }[], state: Record<string, Json>, c: FeatureConfig): void {
  const vocab = [...jobVocab(state, 'feature cursor')];
  const index = new Map(vocab.map((s, i) => [s, i]));
  for (const { result } of items) {
    const d = result.data as { key: string; turn: number; tokens: TokenLogprob[] } | undefined;
    if (!d) continue;
    const rows = tokenRows(d.tokens, vocab, index, c.includeSampled);
    result.topk = [{ key: d.key, turn: d.turn, rows: packTopKRows(rows), tokens: rows.length }];
  }
  state.vocab = vocab;
}

export const feature: Strategy<FeatureConfig> = {
  name: 'feature',
  validate,
  preview,
  init: (store, datasetId) => init(store, datasetId),
  window: {
    items: (c) => stepInputs(c, 'feature').length,
    total: (c) => c.inputs.length,
    batch: (c) => c.batchSize,
    legacyPrefix: legacyNext,
    item,
    commit,
  },
};
