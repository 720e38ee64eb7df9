// Evol-Instruct (WizardLM; with UltraChat the survey's "Data Curation"): each instruction is rewritten `rounds`
// times by the teacher, each round with a method drawn (deterministically per seed) from in-depth evolving
// (deepen, add constraints, concretize, increase reasoning) and in-breadth evolving (a new, rarer prompt in the
// same domain); each evolved instruction is answered. Failed evolutions are eliminated by WizardLM's rules (see
// text.ts evolFailure: empty, a copy of the input, copies the rewriting prompt, empty/trivial answer, short
// "sorry" refusal) and counted per reason in cursor.stats; the instruction then goes on to the next round
// unchanged, as in the paper. One record per surviving evolution: [user: evolved, assistant: answer].
// A window (src/store/window.ts) whose item is one input with all its rounds: the rounds of one input are in
// order (each evolves the last), inputs never wait for each other.
import { Rng } from '../util/rng.ts';
import type { RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import type { ChatMessage, ChatResult } from '../teacher/types.ts';
import { renderTemplate, resolveTemplates, templateId } from './templates.ts';
import { evolFailure } from './text.ts';
import {
  addUsage, bump, chatOptions, checkInputs, checkSampling, fail, inputsOf, intIn, legacyNext,
  numIn, provenanceFor, samplingParams, stepInputs, usageOf, withDefaults,
  type InputsFrom, type PreviewRequest, type SamplingConfig, type StepContext, type Strategy,
} from './types.ts';

export const EVOL_METHODS = ['deepen', 'constraints', 'concretize', 'reasoning', 'breadth'] as const;
export type EvolMethod = (typeof EVOL_METHODS)[number];
const TEMPLATE_NAMES = ['evol.deepen', 'evol.constraints', 'evol.concretize', 'evol.reasoning', 'evol.breadth', 'evol.answer'] as const;

export interface EvolConfig extends SamplingConfig {
  inputs: string[];
  inputsFrom: InputsFrom | null;
  methods: EvolMethod[];
  rounds: number;
  /** An evolution whose ROUGE-L F against its input is ≥ this is "a copy of the input" (no information gain). */
  copyThreshold: number;
  evolveTemperature: number;
  evolveMaxTokens: number;
  /** Instructions per commit (their evolutions are committed together; they run as the teacher's slots allow). */
  batchSize: number;
  templates: Record<(typeof TEMPLATE_NAMES)[number], string>;
}

export const EVOL_DEFAULTS = {
  inputs: [] as string[],
  inputsFrom: null,
  methods: [...EVOL_METHODS] as EvolMethod[],
  rounds: 2,
  copyThreshold: 0.9,
  evolveTemperature: 1,
  evolveMaxTokens: 512,
  temperature: 0.7,
  maxTokens: 512,
  seed: null,
  batchSize: 2,
  templates: {},
};

function validate(input: unknown): EvolConfig {
  const where = 'evol config';
  const c = withDefaults(input, EVOL_DEFAULTS, where);
  if (!Array.isArray(c.methods) || c.methods.length === 0) fail(where, `methods must be a non-empty list of ${EVOL_METHODS.join(', ')}`);
  const methods = c.methods.map((m: unknown, i) => {
    if (!(EVOL_METHODS as readonly unknown[]).includes(m)) fail(where, `methods[${i}] must be one of ${EVOL_METHODS.join(', ')}, got ${JSON.stringify(m)}`);
    return m as EvolMethod;
  });
  return {
    ...checkInputs(where, c.inputs, c.inputsFrom),
    methods,
    rounds: intIn(where, 'rounds', c.rounds, 1, 8),
    copyThreshold: numIn(where, 'copyThreshold', c.copyThreshold, 0.01, 1),
    evolveTemperature: numIn(where, 'evolveTemperature', c.evolveTemperature, 0, 2),
    evolveMaxTokens: intIn(where, 'evolveMaxTokens', c.evolveMaxTokens, 1, 100_000),
    ...checkSampling(where, c),
    batchSize: intIn(where, 'batchSize', c.batchSize, 1, 256),
    templates: resolveTemplates(TEMPLATE_NAMES, c.templates, where),
  };
}

/** The method of round `round` of instruction `i` (deterministic per seed). */
function methodOf(c: EvolConfig, i: number, round: number): EvolMethod {
  const rng = new Rng(((c.seed ?? 0) ^ Math.imul(i + 1, 0x27d4eb2d) ^ Math.imul(round + 1, 0x165667b1)) >>> 0);
  return c.methods[rng.int(c.methods.length)]!;
}

function evolveRequest(c: EvolConfig, method: EvolMethod, instruction: string): { name: `evol.${EvolMethod}`; messages: ChatMessage[] } {
  const name = `evol.${method}` as const;
  return { name, messages: [{ role: 'user', content: renderTemplate(c.templates[name], { instruction }, name) }] };
}

function answerRequest(c: EvolConfig, instruction: string): ChatMessage[] {
  return [{ role: 'user', content: renderTemplate(c.templates['evol.answer'], { instruction }, 'evol.answer') }];
}

const eOpts = (c: EvolConfig) => ({ temperature: c.evolveTemperature, maxTokens: c.evolveMaxTokens, seed: c.seed });

async function preview(config: unknown, store?: DistillStore, count = 3): Promise<PreviewRequest[]> {
  const c = validate(config);
  const inputs = await inputsOf(c, store, 'evol preview');
  return inputs.slice(0, count).map((input, i) => {
    const { name, messages } = evolveRequest(c, methodOf(c, i, 0), input);
    const o = chatOptions(eOpts(c), i * c.rounds, undefined);
    return {
      template: name,
      messages,
      options: { temperature: c.evolveTemperature, maxTokens: c.evolveMaxTokens, ...(o.seed !== undefined ? { seed: o.seed } : {}) },
      note: 'round 1; the evolved instruction is answered with evol.answer and evolved again in later rounds',
    };
  });
}

/** Strips what models wrap a rewritten prompt in (surrounding quotes, whitespace); markers are left for elimination. */
function cleanEvolved(text: string): string {
  return text.trim().replace(/^"([\s\S]*)"$/, '$1').trim();
}

async function evolveOne(ctx: StepContext<EvolConfig>, i: number, input: string, signal: AbortSignal, stats: Record<string, number>): Promise<RecordInput[]> {
  const c = ctx.config;
  const out: RecordInput[] = [];
  let current = input;
  for (let round = 0; round < c.rounds; round++) {
    const method = methodOf(c, i, round);
    const { name, messages } = evolveRequest(c, method, current);
    const salt = i * c.rounds + round;
    const er = await ctx.chat(messages, chatOptions(eOpts(c), salt, signal));
    const evolved = cleanEvolved(er.choices[0]?.text ?? '');
    let failure = evolFailure(current, evolved, null, c.copyThreshold);
    let ar: ChatResult | null = null;
    if (!failure) {
      ar = await ctx.chat(answerRequest(c, evolved), chatOptions(c, salt, signal));
      failure = evolFailure(current, evolved, ar.choices[0]?.text ?? '', c.copyThreshold);
    }
    if (failure) {
      bump(stats, `eliminated:${failure}`);
      continue;
    }
    const params = { ...samplingParams(c), evolve_temperature: c.evolveTemperature, method, round, input_index: i, evolve_template: templateId(name, c.templates[name]) };
    out.push({
      key: `${ctx.jobId}:evol:${i}:${round}`,
      messages: [...answerRequest(c, evolved), { role: 'assistant', content: ar!.choices[0]!.text }],
      provenance: provenanceFor(ctx.teacher, 'evol', templateId(name, c.templates[name]), params, addUsage(usageOf(er), usageOf(ar!)), ctx.now()),
    });
    current = evolved;
  }
  return out;
}

export const evol: Strategy<EvolConfig> = {
  name: 'evol',
  validate,
  preview,
  window: {
    items: (c) => stepInputs(c, 'evol').length,
    total: (c) => c.inputs.length * c.rounds,
    batch: (c) => c.batchSize,
    legacyPrefix: legacyNext,
    // Item i: input i's rounds, one after the other (each round evolves the previous round's instruction).
    item: async (i, ctx) => {
      const stats: Record<string, number> = {};
      const inputs = stepInputs(ctx.config, 'evol');
      const records = await evolveOne(ctx, i, inputs[i]!, ctx.signal!, stats);
      return { records, stats, units: ctx.config.rounds };
    },
  },
};
