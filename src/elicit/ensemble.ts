// Ensemble (Ensemble-Instruct; the survey's open problem of multi-teacher distillation): every input is answered by
// each of several teachers — the job's members, local and remote mixed, `answersPerTeacher` samples each — and one
// answer is kept, either by consensus (the answer with the highest mean ROUGE-L F against all the other answers:
// what the teachers and samples agree on; a member's repeated answer counts once) or by a judge (the job's own teacher grades every answer 1..scoreMax with
// the feedback rubric; the highest grade wins, consensus breaks ties). One record per input holds the kept answer;
// its provenance names the teacher that wrote it, and `params.ensemble` keeps every answer with its teacher and
// scores, so the choice can be made again later under another rule (ensemble-choice.ts) without asking anyone again.
// A window (src/store/window.ts) whose item is one input: its members' answers at once, then the judge's grades.
import type { Json, Provenance, TeacherInfo } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage, ChatResult } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { parseScore, rougeL, wordTokens } from './text.ts';
import {
  addUsage, baseURLHost, bump, chatOptions, checkInputs, checkSampling, ElicitError, fail, inputsOf, intIn, legacyNext, numIn,
  parallel, provenanceFor, samplingParams, stepInputs, textList, usageOf, withDefaults,
  type InputsFrom, type ItemResult, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy, type TeacherLike,
} from './types.ts';

export const ENSEMBLE_RULES = ['consensus', 'judge'] as const;
export type EnsembleRule = (typeof ENSEMBLE_RULES)[number];

export interface EnsembleConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  /** System prompt for the members' answers; null = none. */
  system: string | null;
  /** The members' model names, in order: the teachers the job was made for (checked when it runs). */
  teachers: string[];
  /** Answers each member gives to each input (each its own request). */
  answersPerTeacher: number;
  /** How the kept answer is chosen. */
  select: EnsembleRule;
  /** The judge's scale (select 'judge'): integers 1..scoreMax. */
  scoreMax: number;
  /** The judge's sampling (select 'judge'). */
  judgeTemperature: number;
  judgeMaxTokens: number;
  /** Inputs per commit. */
  batchSize: number;
  templates: Record<'labeling.user' | 'feedback.grade', string>;
}

export const ENSEMBLE_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  system: null,
  teachers: [] as string[],
  // Two answers each: consensus works with two teachers (each one's samples agree with each other or do not).
  answersPerTeacher: 2,
  select: 'consensus',
  scoreMax: 10,
  judgeTemperature: 0,
  judgeMaxTokens: 256,
  temperature: 0.7,
  maxTokens: 512,
  seed: null,
  batchSize: 2,
  templates: {},
};

/** One member's answer as the record keeps it. */
export interface EnsembleAnswer {
  /** Index of the member in the job's `teachers`. */
  member: number;
  teacher: TeacherInfo;
  text: string;
  /** Mean ROUGE-L F against the input's other answers (0 when it is the only one). */
  consensus: number;
  /** The judge's grade, or null (no judge, or an unparseable grade). */
  judge: number | null;
}

/** What `params.ensemble` of a record holds. */
export interface EnsembleChoice {
  rule: EnsembleRule;
  /** Index in `answers` of the kept answer. */
  chosen: number;
  answers: EnsembleAnswer[];
  scoreMax: number;
}

function validate(input: unknown): EnsembleConfig {
  const where = 'ensemble config';
  const c = withDefaults(input, ENSEMBLE_DEFAULTS, where);
  if (c.system !== null && typeof c.system !== 'string') fail(where, 'system must be a string or null');
  if (!(ENSEMBLE_RULES as readonly unknown[]).includes(c.select)) fail(where, `select must be one of ${ENSEMBLE_RULES.join(', ')}, got ${JSON.stringify(c.select)}`);
  const teachers = textList(where, 'teachers', c.teachers, 2, 8);
  const answersPerTeacher = intIn(where, 'answersPerTeacher', c.answersPerTeacher, 1, 8);
  if (c.select === 'consensus' && teachers.length * answersPerTeacher < 3) {
    fail(where, 'consensus needs at least 3 answers per input (with 2 answers each agrees with the other equally): add a teacher, set answersPerTeacher ≥ 2, or select by judge');
  }
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    system: c.system as string | null,
    teachers,
    answersPerTeacher,
    select: c.select as EnsembleRule,
    scoreMax: intIn(where, 'scoreMax', c.scoreMax, 2, 100),
    judgeTemperature: numIn(where, 'judgeTemperature', c.judgeTemperature, 0, 2),
    judgeMaxTokens: intIn(where, 'judgeMaxTokens', c.judgeMaxTokens, 1, 100_000),
    ...checkSampling(where, c),
    batchSize: intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(['labeling.user', 'feedback.grade'] as const, c.templates, where),
  };
}

function answerRequest(c: EnsembleConfig, input: string): ChatMessage[] {
  const messages: ChatMessage[] = c.system === null || c.system === '' ? [] : [{ role: 'system', content: c.system }];
  messages.push({ role: 'user', content: renderTemplate(c.templates['labeling.user'], { input }, 'labeling.user') });
  return messages;
}

function gradeRequest(c: EnsembleConfig, prompt: string, response: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['feedback.grade'], { prompt, response, max: c.scoreMax }, 'feedback.grade') }];
}

async function preview(config: unknown, store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const inputs = await inputsOf(c, store, 'ensemble preview');
  const out: PreviewRequest[] = [];
  for (let i = 0; i < inputs.length && out.length < count; i++) {
    const o = chatOptions(c, i * c.teachers.length * c.answersPerTeacher, undefined);
    out.push({
      template: 'labeling.user', messages: answerRequest(c, inputs[i]!),
      options: { temperature: c.temperature, maxTokens: c.maxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: `sent to each of ${c.teachers.join(', ')} (${c.answersPerTeacher} answer${c.answersPerTeacher > 1 ? 's' : ''} each)` +
        (c.select === 'judge' ? '; the judge then grades every answer with the feedback rubric' : '; the answer most like the other teachers\' is kept'),
    });
  }
  return out;
}

/** The members the job runs with, checked against the teachers it was made for (same models, same order). */
export function checkMembers(c: Pick<EnsembleConfig, 'teachers'>, members: readonly TeacherLike[] | undefined): readonly TeacherLike[] {
  if (!members || members.length === 0) {
    throw new ElicitError(`ensemble: the job asks ${c.teachers.join(', ')}; pass them as runElicitJob(..., { members: [teachers] }) in that order`);
  }
  const given = members.map((m) => m.settings.model);
  if (given.length !== c.teachers.length || given.some((g, i) => g !== c.teachers[i])) {
    throw new ElicitError(`ensemble: the job was made for the teachers ${c.teachers.join(', ')}, but ${given.join(', ')} were given: give the same models in the same order`);
  }
  return members;
}

/**
 * Consensus scores (Ensemble-Instruct): for each answer, the mean ROUGE-L F against every other answer of the input,
 * the same member's other samples included — with two teachers, scoring only across members would be symmetric
 * (F(a, b) = F(b, a)) and could not tell them apart; a member's agreement with itself is self-consistency. 0 when
 * it is the only answer. (Duplicates of one member are dropped before scoring, so a repeated answer votes once.)
 */
export function consensusScores(answers: readonly { text: string }[]): number[] {
  const words = answers.map((a) => wordTokens(a.text));
  return answers.map((_, i) => {
    let sum = 0;
    for (let j = 0; j < answers.length; j++) if (j !== i) sum += rougeL(words[i]!, words[j]!);
    return answers.length < 2 ? 0 : sum / (answers.length - 1);
  });
}

/**
 * The kept answer under `rule`: consensus = highest consensus score; judge = highest grade (answers without a
 * grade never win while one has a grade), ties by consensus; remaining ties: the earliest answer. Or a fixed
 * member's best-consensus answer (`{member}`). Returns -1 when no answer qualifies.
 */
export function chooseAnswer(answers: readonly Pick<EnsembleAnswer, 'member' | 'consensus' | 'judge'>[], rule: EnsembleRule | { member: number }): number {
  let best = -1;
  const better = (a: (typeof answers)[number], b: (typeof answers)[number]): boolean => {
    if (rule === 'judge' && a.judge !== b.judge) return (a.judge ?? -Infinity) > (b.judge ?? -Infinity);
    return a.consensus > b.consensus;
  };
  answers.forEach((a, i) => {
    if (typeof rule === 'object' && a.member !== rule.member) return;
    if (rule === 'judge' && a.judge === null) return;
    if (best < 0 || better(a, answers[best]!)) best = i;
  });
  return best;
}

export function teacherInfo(t: TeacherLike): TeacherInfo {
  return { kind: t.settings.kind ?? 'openai-compatible', model: t.settings.model, baseURLHost: baseURLHost(t.settings.baseURL) };
}

/** Item i of the window: input i answered by every member at once, then (judge) every answer graded at once. */
async function item(i: number, ctx: StepContext<EnsembleConfig>): Promise<ItemResult> {
  const c = ctx.config;
  const members = checkMembers(c, ctx.members);
  const input = stepInputs(c, 'ensemble')[i]!;
  const stats: Record<string, number> = {};
  const signal = ctx.signal!;
  const messages = answerRequest(c, input);
  const per = c.teachers.length * c.answersPerTeacher;
  const asks = members.flatMap((_, m) => Array.from({ length: c.answersPerTeacher }, (_, j) => ({ m, j })));
  const results = await parallel(signal, asks.map(({ m, j }) => (sig) => ctx.chatMember!(m, messages, chatOptions(c, i * per + m * c.answersPerTeacher + j, sig))));
  const got: { member: number; text: string; r: ChatResult }[] = [];
  results.forEach((r, k) => {
    const text = r.choices[0]?.text ?? '';
    if (text.trim() === '') bump(stats, 'emptyAnswer');
    else if (got.some((g) => g.member === asks[k]!.m && g.text === text)) bump(stats, 'duplicateAnswer');
    else got.push({ member: asks[k]!.m, text, r });
  });
  if (got.length === 0) { bump(stats, 'noAnswer'); return { records: [], stats }; }
  const consensus = consensusScores(got);
  let grades: (number | null)[] = got.map(() => null);
  let judgeUsage: ReturnType<typeof usageOf>[] = [];
  if (c.select === 'judge') {
    const judged = await parallel(signal, got.map((g, k) => (sig) => ctx.chat(gradeRequest(c, input, g.text),
      chatOptions({ temperature: c.judgeTemperature, maxTokens: c.judgeMaxTokens, seed: c.seed }, i * per + k, sig))));
    judgeUsage = judged.map(usageOf);
    grades = judged.map((j) => {
      const p = parseScore(j.choices[0]?.text ?? '', c.scoreMax);
      if (p.score === null) bump(stats, 'unparseableScore');
      return p.score;
    });
  }
  const answers: EnsembleAnswer[] = got.map((g, k) => ({ member: g.member, teacher: teacherInfo(members[g.member]!), text: g.text, consensus: consensus[k]!, judge: grades[k]! }));
  const chosen = chooseAnswer(answers, c.select);
  if (chosen < 0) { bump(stats, 'noneGraded'); return { records: [], stats }; }
  bump(stats, `kept:${c.teachers[answers[chosen]!.member]}`);
  const choice: EnsembleChoice = { rule: c.select, chosen, answers, scoreMax: c.scoreMax };
  const params = { ...samplingParams(c), input_index: i, answers_per_teacher: c.answersPerTeacher, ensemble: choice as unknown as Json };
  const usage = addUsage(...got.map((g) => usageOf(g.r)), ...judgeUsage);
  const template = templateId('labeling.user', c.templates['labeling.user']);
  const base = provenanceFor(members[answers[chosen]!.member]!, 'ensemble', template, params, usage, ctx.now());
  return { records: [{ key: `${ctx.jobId}:ensemble:${i}`, messages: [...messages, { role: 'assistant', content: answers[chosen]!.text }], provenance: base }], stats };
}

/** The ensemble choice a record keeps in its provenance, or null for a record not made by an ensemble job. */
export function ensembleChoiceOf(p: Provenance): EnsembleChoice | null {
  const e = p.params.ensemble as unknown;
  if (typeof e !== 'object' || e === null || !Array.isArray((e as EnsembleChoice).answers)) return null;
  return e as EnsembleChoice;
}

export const ensemble: Strategy<EnsembleConfig> = {
  name: 'ensemble',
  validate,
  preview,
  window: {
    items: (c) => stepInputs(c, 'ensemble').length,
    total: (c) => c.inputs.length,
    requestsPerItem: (c) => c.teachers.length * c.answersPerTeacher,
    batch: (c) => c.batchSize,
    legacyPrefix: legacyNext,
    item,
  },
};
