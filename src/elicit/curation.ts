// Data curation (UltraChat-style, the survey's "Data Curation"): a topic tree given in the config (meta-information
// the user edits) → the teacher writes questionsPerLeaf questions for each leaf topic → the teacher answers each.
// A window (src/store/window.ts) whose item is one leaf (its question request, then its answers at once): leaves
// never wait for each other. Duplicate or empty questions are dropped and counted.
// (UltraChat's multi-turn follow-ups by a simulated user are not done here: records are single exchanges.)
import type { RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { parseList, wordTokens } from './text.ts';
import {
  addUsage, bool, bump, chatOptions, checkSampling, cursorInt, fail, intIn, isRecord, NO_USAGE,
  numIn, parallel, provenanceFor, samplingParams, usageOf, withDefaults,
  type ItemResult, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy,
} from './types.ts';

/** A topic: a leaf ("Optics") or a node with subtopics. */
export type TopicNode = string | { topic: string; subtopics: TopicNode[] };

export interface Leaf {
  topic: string;
  /** Names from the root to the leaf. */
  path: string[];
}

export interface CurationConfig extends SamplingConfig {
  topics: TopicNode[];
  questionsPerLeaf: number;
  /** Answer the questions (false = records hold the question only). */
  answer: boolean;
  questionTemperature: number;
  questionMaxTokens: number;
  templates: Record<'curation.questions' | 'curation.answer', string>;
}

export const CURATION_DEFAULTS = {
  topics: [] as TopicNode[],
  questionsPerLeaf: 5,
  answer: true,
  questionTemperature: 1,
  questionMaxTokens: 512,
  temperature: 0.7,
  maxTokens: 512,
  seed: null,
  templates: {},
};

function checkTopics(v: unknown, where: string, depth: number, count: { n: number }): TopicNode[] {
  if (!Array.isArray(v) || v.length === 0) fail(where, 'must be a non-empty array of topics (strings or {topic, subtopics})');
  if (depth > 8) fail(where, 'the topic tree is deeper than 8 levels');
  return v.map((t: unknown, i) => {
    const w = `${where}[${i}]`;
    if (++count.n > 10_000) fail(where, 'the topic tree has more than 10000 nodes');
    if (typeof t === 'string') {
      if (t.trim() === '') fail(w, 'a topic must not be empty');
      return t.trim();
    }
    if (!isRecord(t)) fail(w, 'must be a string or {topic, subtopics}');
    for (const k of Object.keys(t)) if (k !== 'topic' && k !== 'subtopics') fail(w, `unknown key '${k}' (expected topic, subtopics)`);
    if (typeof t.topic !== 'string' || t.topic.trim() === '') fail(`${w}.topic`, 'must be a non-empty string');
    return { topic: t.topic.trim(), subtopics: checkTopics(t.subtopics, `${w}.subtopics`, depth + 1, count) };
  });
}

/** The leaves of the tree in depth-first order. */
export function topicLeaves(nodes: readonly TopicNode[], path: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const n of nodes) {
    if (typeof n === 'string') out.push({ topic: n, path: [...path, n] });
    else out.push(...topicLeaves(n.subtopics, [...path, n.topic]));
  }
  return out;
}

function validate(input: unknown): CurationConfig {
  const where = 'curation config';
  const c = withDefaults(input, CURATION_DEFAULTS, where);
  return {
    topics: checkTopics(c.topics, `${where}: topics`, 0, { n: 0 }),
    questionsPerLeaf: intIn(where, 'questionsPerLeaf', c.questionsPerLeaf, 1, 50),
    answer: bool(where, 'answer', c.answer),
    questionTemperature: numIn(where, 'questionTemperature', c.questionTemperature, 0, 2),
    questionMaxTokens: intIn(where, 'questionMaxTokens', c.questionMaxTokens, 1, 100_000),
    ...checkSampling(where, c),
    templates: resolveTemplates(['curation.questions', 'curation.answer'] as const, c.templates, where),
  };
}

function questionRequest(c: CurationConfig, leaf: Leaf): ChatMessage[] {
  const vars = { count: c.questionsPerLeaf, topic: leaf.topic, path: leaf.path.join(' > ') };
  return [{ role: 'user', content: renderTemplate(c.templates['curation.questions'], vars, 'curation.questions') }];
}

function answerRequest(c: CurationConfig, leaf: Leaf, question: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['curation.answer'], { question, topic: leaf.topic }, 'curation.answer') }];
}

const qOpts = (c: CurationConfig) => ({ temperature: c.questionTemperature, maxTokens: c.questionMaxTokens, seed: c.seed });

async function preview(config: unknown, _store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  return topicLeaves(c.topics).slice(0, count).map((leaf, i) => {
    const o = chatOptions(qOpts(c), i, undefined);
    return {
      template: 'curation.questions',
      messages: questionRequest(c, leaf),
      options: { temperature: c.questionTemperature, maxTokens: c.questionMaxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: c.answer ? 'each question is then answered with the curation.answer template' : undefined,
    } as PreviewRequest;
  });
}

/** Item li of the window: leaf li's question request, then its questions' answers (at once). */
async function item(li: number, ctx: StepContext<CurationConfig>): Promise<ItemResult> {
  const c = ctx.config;
  const leaf = topicLeaves(c.topics)[li]!;
  const stats: Record<string, number> = {};
  const qr = await ctx.chat(questionRequest(c, leaf), chatOptions(qOpts(c), li, ctx.signal));
  const seen = new Set<string>();
  const questions: string[] = [];
  for (const q of parseList(qr.choices[0]?.text ?? '', c.questionsPerLeaf * 3)) {
    const norm = wordTokens(q).join(' ');
    if (norm === '' || seen.has(norm)) { bump(stats, 'duplicateQuestion'); continue; }
    seen.add(norm);
    if (questions.length < c.questionsPerLeaf) questions.push(q);
  }
  if (questions.length < c.questionsPerLeaf) bump(stats, 'missingQuestions', c.questionsPerLeaf - questions.length);
  const answers = c.answer
    ? await parallel(ctx.signal, questions.map((q, n) => (signal) => ctx.chat(answerRequest(c, leaf, q), chatOptions(c, li * c.questionsPerLeaf + n, signal))))
    : [];
  const records: RecordInput[] = [];
  let qUsage = usageOf(qr);
  questions.forEach((q, n) => {
    const r = answers[n];
    const answer = r?.choices[0]?.text ?? '';
    if (c.answer && answer.trim() === '') { bump(stats, 'emptyAnswer'); return; }
    const messages = answerRequest(c, leaf, q);
    if (c.answer) messages.push({ role: 'assistant', content: answer });
    const params = { ...samplingParams(c), question_temperature: c.questionTemperature, topic_path: leaf.path, leaf_index: li, question_index: n, includes_question_usage: qUsage !== NO_USAGE };
    const usage = addUsage(r ? usageOf(r) : NO_USAGE, qUsage);
    qUsage = NO_USAGE;
    const template = c.answer ? templateId('curation.answer', c.templates['curation.answer']) : templateId('curation.questions', c.templates['curation.questions']);
    records.push({ key: `${ctx.jobId}:curation:${li}:${n}`, messages, provenance: provenanceFor(ctx.teacher, 'curation', template, params, usage, ctx.now()) });
  });
  return { records, stats, units: c.questionsPerLeaf };
}

export const curation: Strategy<CurationConfig> = {
  name: 'curation',
  validate,
  preview,
  window: {
    items: (c) => topicLeaves(c.topics).length,
    total: (c) => topicLeaves(c.topics).length * c.questionsPerLeaf,
    requestsPerItem: (c) => (c.answer ? c.questionsPerLeaf : 1),
    batch: (c, concurrency) => Math.max(1, Math.ceil(concurrency / (c.answer ? c.questionsPerLeaf : 1))),
    legacyPrefix: (state) => {
      const leaf = cursorInt(state, 'leaf', 0); // the step version's cursor: leaves done
      delete state.leaf;
      return leaf;
    },
    item,
  },
};
