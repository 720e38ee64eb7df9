// What the Data stage needs to know about each elicitation strategy to show it to a person: a one-line
// explanation in the survey's terms, what it needs (a teacher; a trained student; the teacher's logprobs), the
// options worth a form field (typed, with the strategy's own defaults and bounds), what a unit of progress is,
// and a hint per template. configFromForm turns the form's raw values (strings, booleans, lists) into the plain
// config object the strategy's validate() checks — validate stays the one authority on what is allowed; this
// only parses numbers and lines and names the field when a value is not a number. No DOM.
import { CURATION_DEFAULTS, topicLeaves, type TopicNode } from './curation.ts';
import { ENSEMBLE_DEFAULTS, ENSEMBLE_RULES } from './ensemble.ts';
import { EVOL_DEFAULTS, EVOL_METHODS } from './evol.ts';
import { EXPANSION_DEFAULTS } from './expansion.ts';
import { FEATURE_DEFAULTS } from './feature.ts';
import { FEEDBACK_DEFAULTS } from './feedback.ts';
import { LABELING_DEFAULTS } from './labeling.ts';
import { SELF_KNOWLEDGE_DEFAULTS, SELF_KNOWLEDGE_MODES } from './self-knowledge.ts';
import { TEMPLATES, type TemplateName } from './templates.ts';
import { parseTopicText } from './topic-text.ts';
import { ElicitError, isRecord, type StrategyName } from './types.ts';

export type FieldKind = 'int' | 'num' | 'bool' | 'text' | 'select' | 'multi' | 'auto-int';

/** One strategy-specific option. 'text': '' means null (e.g. no system prompt); 'auto-int': '' means null (automatic). */
export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  help?: string;
  min?: number;
  max?: number;
  step?: number;
  options?: readonly string[];
  /** Read by the page, not a key of the strategy's config (the ensemble's other teachers). */
  formOnly?: true;
}

/** The common sampling keys shown for every strategy (batchSize only where the strategy has it). */
export type CommonKey = 'temperature' | 'maxTokens' | 'seed' | 'batchSize';

export interface StrategyInfo {
  name: StrategyName;
  title: string;
  /** One line for a newcomer. */
  what: string;
  /** The main input: a list of prompts, seed instructions, or a topic tree. */
  input: 'list' | 'seeds' | 'topics';
  /** Needs a trained student's samples (feedback, self-knowledge). */
  needsStudent: boolean;
  /** Needs the teacher's token log-probabilities (feature). */
  needsLogprobs: boolean;
  /** What one unit of progress is, plural ("prompts", "instructions", …). */
  unit: string;
  /** Whether the config has batchSize (inputs per commit). */
  hasBatch: boolean;
  /** labeling: an empty batch size means "automatic" (null). */
  batchAuto: boolean;
  fields: FieldSpec[];
  /** The strategy's defaults (its *_DEFAULTS object). */
  defaults: Record<string, unknown>;
  templates: { name: TemplateName; hint: string }[];
}

const sampling = (what: string): FieldSpec[] => [
  { key: `${what}Temperature`, label: `${what} temperature`, kind: 'num', min: 0, max: 2, step: 0.05 },
  { key: `${what}MaxTokens`, label: `${what} max tokens`, kind: 'int', min: 1, max: 100_000 },
];

const EVOL_HINT: Record<string, string> = {
  deepen: 'in-depth: increase the depth and breadth of the inquiry',
  constraints: 'in-depth: add one more constraint',
  concretize: 'in-depth: replace general concepts with specific ones',
  reasoning: 'in-depth: ask for multi-step reasoning',
  breadth: 'in-breadth: a new, rarer prompt in the same domain',
};

export const STRATEGY_INFO: { readonly [N in StrategyName]: StrategyInfo } = {
  labeling: {
    name: 'labeling', title: 'Labeling',
    what: 'Labeling: the teacher answers each of your prompts (FLAN/Orca-style; optionally with step-by-step explanations).',
    input: 'list', needsStudent: false, needsLogprobs: false, unit: 'prompts', hasBatch: true, batchAuto: true,
    fields: [
      { key: 'chainOfThought', label: 'ask for step-by-step reasoning (Orca explanation traces)', kind: 'bool' },
      { key: 'system', label: 'system prompt (empty: none)', kind: 'text' },
      { key: 'answersPerInput', label: 'answers per prompt', kind: 'int', min: 1, max: 16 },
    ],
    defaults: LABELING_DEFAULTS,
    templates: [
      { name: 'labeling.user', hint: 'the user message sent for each prompt' },
      { name: 'labeling.cot', hint: 'used instead of labeling.user when step-by-step reasoning is on' },
      { name: 'labeling.system', hint: 'the system prompt with step-by-step reasoning when no system prompt is given' },
    ],
  },
  expansion: {
    name: 'expansion', title: 'Expansion (Self-Instruct)',
    what: 'Expansion (Self-Instruct): from a few seed instructions the teacher writes new, diverse ones (near-duplicates dropped by ROUGE-L) and answers them.',
    input: 'seeds', needsStudent: false, needsLogprobs: false, unit: 'instructions', hasBatch: false, batchAuto: false,
    fields: [
      { key: 'target', label: 'instructions to generate', kind: 'int', min: 1, max: 100_000 },
      { key: 'perRequest', label: 'asked for per request', kind: 'int', min: 1, max: 50 },
      { key: 'demosPerPrompt', label: 'demonstrations per request', kind: 'int', min: 1, max: 32 },
      { key: 'generatedDemos', label: 'of which generated ones', kind: 'int', min: 0, max: 32 },
      { key: 'maxSimilarity', label: 'max ROUGE-L similarity', kind: 'num', min: 0, max: 1, step: 0.05 },
      { key: 'minWords', label: 'min words', kind: 'int', min: 1, max: 1000 },
      { key: 'maxWords', label: 'max words', kind: 'int', min: 1, max: 10_000 },
      { key: 'maxRequests', label: 'max generation requests (empty: automatic)', kind: 'auto-int', min: 1, max: 1_000_000 },
      { key: 'label', label: 'answer the new instructions', kind: 'bool' },
      ...sampling('generate'),
    ],
    defaults: EXPANSION_DEFAULTS,
    templates: [
      { name: 'expansion.generate', hint: 'asks for new instructions: {{demos}} = the numbered demonstrations, {{count}} = how many, {{next}} = the first new number' },
      { name: 'expansion.answer', hint: 'the user message that asks for the answer to each kept instruction' },
    ],
  },
  curation: {
    name: 'curation', title: 'Data curation (topic tree)',
    what: 'Data curation (UltraChat-style): the teacher writes questions for every leaf of a topic tree you edit, then answers them.',
    input: 'topics', needsStudent: false, needsLogprobs: false, unit: 'questions', hasBatch: false, batchAuto: false,
    fields: [
      { key: 'questionsPerLeaf', label: 'questions per leaf topic', kind: 'int', min: 1, max: 50 },
      { key: 'answer', label: 'answer the questions', kind: 'bool' },
      ...sampling('question'),
    ],
    defaults: CURATION_DEFAULTS,
    templates: [
      { name: 'curation.questions', hint: 'asks for questions about one leaf topic; {{path}} = its branch from the root' },
      { name: 'curation.answer', hint: 'the user message that asks for the answer to each question' },
    ],
  },
  evol: {
    name: 'evol', title: 'Evol-Instruct',
    what: 'Evol-Instruct (WizardLM): the teacher rewrites each prompt into harder or rarer ones over several rounds and answers them; failed evolutions are eliminated.',
    input: 'list', needsStudent: false, needsLogprobs: false, unit: 'evolutions', hasBatch: true, batchAuto: false,
    fields: [
      { key: 'methods', label: 'evolution methods', kind: 'multi', options: EVOL_METHODS },
      { key: 'rounds', label: 'rounds', kind: 'int', min: 1, max: 8 },
      { key: 'copyThreshold', label: 'a copy of its input at ROUGE-L ≥', kind: 'num', min: 0.01, max: 1, step: 0.05 },
      ...sampling('evolve'),
    ],
    defaults: EVOL_DEFAULTS,
    templates: [
      ...EVOL_METHODS.map((m) => ({ name: `evol.${m}` as TemplateName, hint: `rewrites an instruction, ${EVOL_HINT[m]}` })),
      { name: 'evol.answer', hint: 'the user message that asks for the answer to each evolved instruction' },
    ],
  },
  feature: {
    name: 'feature', title: 'Feature (top-k distributions)',
    what: 'Feature knowledge: the teacher answers each prompt with its top-k token distributions (logprobs), for token-level KD.',
    input: 'list', needsStudent: false, needsLogprobs: true, unit: 'prompts', hasBatch: true, batchAuto: false,
    fields: [
      { key: 'topLogprobs', label: 'alternatives per token (top-k)', kind: 'int', min: 1, max: 20 },
      { key: 'includeSampled', label: 'add the sampled token when it is not in the top-k', kind: 'bool' },
      { key: 'system', label: 'system prompt (empty: none)', kind: 'text' },
    ],
    defaults: FEATURE_DEFAULTS,
    templates: [{ name: 'feature.user', hint: 'the user message sent for each prompt' }],
  },
  feedback: {
    name: 'feedback', title: 'Feedback (preference pairs)',
    what: "Feedback (RLAIF, UltraFeedback-style): the teacher grades your student's samples; the best and the worst make a preference pair (for DPO).",
    input: 'list', needsStudent: true, needsLogprobs: false, unit: 'prompts', hasBatch: true, batchAuto: false,
    fields: [
      { key: 'samples', label: 'student samples per prompt', kind: 'int', min: 2, max: 64 },
      { key: 'scoreMax', label: 'score scale 1 to', kind: 'int', min: 2, max: 100 },
    ],
    defaults: FEEDBACK_DEFAULTS,
    templates: [{ name: 'feedback.grade', hint: '{{response}} is one student sample; the reply must end with a line “Score: N”' }],
  },
  'self-knowledge': {
    name: 'self-knowledge', title: 'Self-knowledge',
    what: "Self-knowledge: the student's own samples, kept when they agree with each other (self-consistency) or when the teacher verifies them.",
    input: 'list', needsStudent: true, needsLogprobs: false, unit: 'prompts', hasBatch: true, batchAuto: false,
    fields: [
      { key: 'mode', label: 'keep a sample when', kind: 'select', options: SELF_KNOWLEDGE_MODES },
      { key: 'samples', label: 'student samples per prompt', kind: 'int', min: 1, max: 64 },
      { key: 'minAgreement', label: 'majority must exceed (fraction)', kind: 'num', min: 0, max: 0.99, step: 0.05 },
    ],
    defaults: SELF_KNOWLEDGE_DEFAULTS,
    templates: [{ name: 'self-knowledge.verify', hint: 'asks the teacher about one student sample; the reply must say “Verdict: yes” or “Verdict: no”' }],
  },
  ensemble: {
    name: 'ensemble', title: 'Ensemble of teachers',
    what: 'Ensemble (Ensemble-Instruct): several teachers answer each prompt; the answer the others agree with most (ROUGE-L consensus), or the one a judge grades best, is kept — every answer is stored, so the choice can be changed later.',
    input: 'list', needsStudent: false, needsLogprobs: false, unit: 'prompts', hasBatch: true, batchAuto: false,
    fields: [
      { key: 'select', label: 'keep the answer chosen by', kind: 'select', options: ENSEMBLE_RULES },
      { key: 'answersPerTeacher', label: 'answers per teacher', kind: 'int', min: 1, max: 8 },
      { key: 'others', label: 'other teachers, one per line: a model at the active teacher’s server, or model@https://server/v1', kind: 'text', formOnly: true },
      { key: 'system', label: 'system prompt (empty: none)', kind: 'text' },
    ],
    defaults: ENSEMBLE_DEFAULTS,
    templates: [
      { name: 'labeling.user', hint: 'the user message each teacher answers' },
      { name: 'feedback.grade', hint: 'the judge grades one answer ({{response}}); the reply must end with a line “Score: N”' },
    ],
  },
};

/** What the self-knowledge modes mean, for the select. */
export const SELF_KNOWLEDGE_MODE_LABELS: Record<string, string> = {
  either: 'either: self-consistency agrees, or the teacher verifies it',
  consistency: 'consistency: the samples agree (no teacher requests)',
  verify: 'verify: the teacher says it is correct',
};

/** The raw values of a strategy form. */
/** What the form's reading depends on beyond its fields: the active teacher (the ensemble's first member). */
export interface FormContext {
  active?: { model: string; baseURL: string | null } | null;
}

/** One more teacher of an ensemble, as the form names it. */
export interface OtherTeacher {
  model: string;
  baseURL: string;
}

/**
 * The ensemble form's other teachers: one per line, `model` (served where the active teacher is: a remote one) or
 * `model@https://server/v1`. Errors name the line and say what to write.
 */
export function otherTeachers(text: string, active: FormContext['active']): OtherTeacher[] {
  const out: OtherTeacher[] = [];
  splitLines(text).forEach((line, i) => {
    const at = line.lastIndexOf('@');
    const model = (at < 0 ? line : line.slice(0, at)).trim();
    let baseURL = at < 0 ? active?.baseURL ?? '' : line.slice(at + 1).trim();
    if (model === '') throw new ElicitError(`other teachers, line ${i + 1}: no model name before '@'`);
    if (baseURL === '') throw new ElicitError(`other teachers, line ${i + 1}: the active teacher is not a server, so name where "${model}" is served: ${model}@https://server/v1`);
    try {
      const u = new URL(baseURL);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
      baseURL = u.href.replace(/\/+$/, '');
    } catch {
      throw new ElicitError(`other teachers, line ${i + 1}: '${baseURL}' is not an http(s) URL (write ${model}@https://server/v1)`);
    }
    if (out.some((o) => o.model === model && o.baseURL === baseURL) || (active?.model === model && active.baseURL === baseURL)) {
      throw new ElicitError(`other teachers, line ${i + 1}: "${model}" is named twice (each teacher once; ask for more answers per teacher instead)`);
    }
    out.push({ model, baseURL });
  });
  if (out.length === 0) throw new ElicitError('other teachers: name at least one more teacher (one per line), so that there is an ensemble');
  return out;
}

export interface FormValues {
  /** The prompts (input-list strategies) or seeds (expansion), one per line. */
  lines?: string;
  /** Take the inputs from this dataset instead of `lines` (input-list strategies). */
  inputsFrom?: string | null;
  /** The topic tree text (curation). */
  topics?: string;
  /** Strategy-specific options by key: strings for numbers and text, booleans, string lists for 'multi'. */
  fields: Record<string, string | boolean | string[]>;
  /** Common sampling keys, as typed. */
  common: Partial<Record<CommonKey, string>>;
  /** Template texts by name; only those that differ from the default go into the config. */
  templates: Partial<Record<TemplateName, string>>;
}

/** Non-empty trimmed lines of a text. */
export function splitLines(text: string): string[] {
  return text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
}

function number(label: string, raw: string, integer: boolean): number {
  const s = raw.trim();
  if (s === '') throw new ElicitError(`${label}: enter a number`);
  const v = Number(s);
  if (!Number.isFinite(v)) throw new ElicitError(`${label}: “${s.length > 20 ? `${s.slice(0, 20)}…` : s}” is not a number`);
  if (integer && !Number.isInteger(v)) throw new ElicitError(`${label}: must be a whole number, got ${s}`);
  return v;
}

const COMMON_LABELS: Record<CommonKey, string> = { temperature: 'temperature', maxTokens: 'max tokens', seed: 'seed', batchSize: 'prompts per commit' };

/**
 * The strategy config of a form (plain data, not yet validated: pass it to strategyByName(name).validate).
 * Throws ElicitError naming the field when a number does not parse or the topic tree has a bad line.
 */
export function configFromForm(name: StrategyName, v: FormValues, ctx: FormContext = {}): Record<string, unknown> {
  const info = STRATEGY_INFO[name];
  const c: Record<string, unknown> = {};
  if (name === 'ensemble') {
    const others = otherTeachers(typeof v.fields.others === 'string' ? v.fields.others : '', ctx.active ?? null);
    c.teachers = [ctx.active?.model ?? 'the active teacher', ...others.map((o) => o.model)];
  }
  if (info.input === 'list') {
    if (v.inputsFrom) c.inputsFrom = { datasetId: v.inputsFrom };
    else c.inputs = splitLines(v.lines ?? '');
  } else if (info.input === 'seeds') {
    c.seeds = splitLines(v.lines ?? '');
  } else {
    c.topics = parseTopicText(v.topics ?? '') as TopicNode[];
  }
  for (const f of info.fields) {
    const raw = v.fields[f.key];
    if (raw === undefined || f.formOnly) continue;
    if (f.kind === 'bool') c[f.key] = raw === true;
    else if (f.kind === 'multi') c[f.key] = Array.isArray(raw) ? raw : [];
    else if (typeof raw !== 'string') continue;
    else if (f.kind === 'int' || f.kind === 'num') c[f.key] = number(f.label, raw, f.kind === 'int');
    else if (f.kind === 'auto-int') c[f.key] = raw.trim() === '' ? null : number(f.label, raw, true);
    else if (f.kind === 'text') c[f.key] = raw.trim() === '' ? null : raw;
    else c[f.key] = raw;
  }
  const common = v.common;
  if (common.temperature !== undefined) c.temperature = number(COMMON_LABELS.temperature, common.temperature, false);
  if (common.maxTokens !== undefined) c.maxTokens = number(COMMON_LABELS.maxTokens, common.maxTokens, true);
  if (common.seed !== undefined) c.seed = common.seed.trim() === '' ? null : number(COMMON_LABELS.seed, common.seed, true);
  if (info.hasBatch && common.batchSize !== undefined) {
    c.batchSize = info.batchAuto && common.batchSize.trim() === '' ? null : number(COMMON_LABELS.batchSize, common.batchSize, true);
  }
  const templates: Record<string, string> = {};
  for (const t of info.templates) {
    const text = v.templates[t.name];
    if (text !== undefined && text !== TEMPLATES[t.name].text) templates[t.name] = text;
  }
  if (Object.keys(templates).length > 0) c.templates = templates;
  return c;
}

/**
 * Units of work a validated config plans (what the strategy's steps report as `total`), so progress has a total
 * before the first step commits. 0 when it cannot be told (inputs still to be read from a dataset).
 */
export function plannedTotal(name: StrategyName, config: unknown): number {
  if (!isRecord(config)) return 0;
  const inputs = Array.isArray(config.inputs) ? config.inputs.length : 0;
  switch (name) {
    case 'expansion': return typeof config.target === 'number' ? config.target : 0;
    case 'curation': {
      if (!Array.isArray(config.topics) || typeof config.questionsPerLeaf !== 'number') return 0;
      return topicLeaves(config.topics as TopicNode[]).length * config.questionsPerLeaf;
    }
    case 'evol': return inputs * (typeof config.rounds === 'number' ? config.rounds : 1);
    case 'labeling': return inputs * (typeof config.answersPerInput === 'number' ? config.answersPerInput : 1);
    default: return inputs;
  }
}

/**
 * What plannedTotal (and a job's progress) counts, plural: the strategy's unit, except for labeling with several
 * answers per prompt, which counts answers (10 prompts × 3 answers is 30 answers, not "30 prompts").
 */
export function progressUnit(name: StrategyName, config: unknown): string {
  if (name === 'labeling' && isRecord(config) && typeof config.answersPerInput === 'number' && config.answersPerInput > 1) return 'answers';
  return STRATEGY_INFO[name].unit;
}
