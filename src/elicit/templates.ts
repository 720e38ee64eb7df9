// Editable prompt templates of the elicitation strategies: text with `{{name}}` placeholders, their defaults (one
// per strategy step), validation (a template may use only the variables its step provides, must use the ones it
// needs, and rendering fails when a placeholder has no value) and rendering. Rendering escapes nothing and
// expands in one pass: values are plain text (never HTML) and a `{{x}}` inside a value stays literally `{{x}}`.
import { ElicitError, isRecord } from './types.ts';

export interface TemplateSpec {
  /** The default text. */
  text: string;
  /** Variables the step provides (a placeholder outside this list is an error). */
  vars: readonly string[];
  /** Variables the template must use (e.g. the input it is about). */
  required: readonly string[];
}

const ORCA_SYSTEM =
  'You are a helpful assistant. The user will give you a task. Complete it as faithfully as you can. ' +
  'While performing the task, think step by step and justify your steps.';

const EVOL_HEAD =
  'I want you to act as a Prompt Rewriter. Your objective is to rewrite a given prompt into a more complex version ' +
  'to make it a bit harder for famous AI systems to handle. The rewritten prompt must be reasonable, must be ' +
  'understood and answered by humans, and must not omit the non-text parts of the given prompt. ' +
  'The rewritten prompt may add only 10 to 20 words. Reply with the rewritten prompt only.\n';

/** Every template, by name `<strategy>.<step>`. */
export const TEMPLATES = {
  'labeling.user': { text: '{{input}}', vars: ['input'], required: ['input'] },
  'labeling.cot': { text: '{{input}}\n\nLet\'s think step by step, then give the final answer.', vars: ['input'], required: ['input'] },
  'labeling.system': { text: ORCA_SYSTEM, vars: [], required: [] },
  'expansion.generate': {
    text:
      'Come up with a series of diverse tasks. Each task is one instruction a user could give an AI assistant. ' +
      'Vary the verbs, topics and kinds of task; each must be answerable in text alone.\n\n{{demos}}\n\n' +
      'Write {{count}} new tasks, one per line, numbered from {{next}}.',
    vars: ['demos', 'count', 'next'],
    required: ['demos'],
  },
  'expansion.answer': { text: '{{instruction}}', vars: ['instruction'], required: ['instruction'] },
  'curation.questions': {
    text:
      'Write {{count}} diverse, self-contained questions a curious person might ask about "{{topic}}" ' +
      '(within: {{path}}). One question per line, numbered.',
    vars: ['count', 'topic', 'path'],
    required: ['topic'],
  },
  'curation.answer': { text: '{{question}}', vars: ['question', 'topic'], required: ['question'] },
  'evol.deepen': {
    text: `${EVOL_HEAD}If the given prompt asks about a certain issue, increase the depth and breadth of the inquiry.\n\n#Given Prompt#:\n{{instruction}}\n\n#Rewritten Prompt#:`,
    vars: ['instruction'],
    required: ['instruction'],
  },
  'evol.constraints': {
    text: `${EVOL_HEAD}Add one more constraint or requirement to the given prompt.\n\n#Given Prompt#:\n{{instruction}}\n\n#Rewritten Prompt#:`,
    vars: ['instruction'],
    required: ['instruction'],
  },
  'evol.concretize': {
    text: `${EVOL_HEAD}Replace general concepts in the given prompt with more specific concepts.\n\n#Given Prompt#:\n{{instruction}}\n\n#Rewritten Prompt#:`,
    vars: ['instruction'],
    required: ['instruction'],
  },
  'evol.reasoning': {
    text: `${EVOL_HEAD}If the given prompt can be solved with a few simple thinking steps, rewrite it to explicitly request multiple-step reasoning.\n\n#Given Prompt#:\n{{instruction}}\n\n#Rewritten Prompt#:`,
    vars: ['instruction'],
    required: ['instruction'],
  },
  'evol.breadth': {
    text:
      'I want you to act as a Prompt Creator. Draw inspiration from the given prompt to create a brand new prompt ' +
      'in the same domain, but rarer. It should be of similar length and difficulty, reasonable, and answerable ' +
      'by humans. Reply with the new prompt only.\n\n#Given Prompt#:\n{{instruction}}\n\n#Created Prompt#:',
    vars: ['instruction'],
    required: ['instruction'],
  },
  'evol.answer': { text: '{{instruction}}', vars: ['instruction'], required: ['instruction'] },
  'feature.user': { text: '{{input}}', vars: ['input'], required: ['input'] },
  'feedback.grade': {
    text:
      'Rate the response to the instruction below for helpfulness, correctness and clarity on a scale of 1 to ' +
      '{{max}}. Explain briefly, then end with a line "Score: N".\n\n[Instruction]\n{{prompt}}\n\n[Response]\n{{response}}',
    vars: ['prompt', 'response', 'max'],
    required: ['prompt', 'response'],
  },
  'self-knowledge.verify': {
    text:
      'Is the following answer to the question correct? Reply "Verdict: yes" or "Verdict: no", then explain briefly.' +
      '\n\n[Question]\n{{prompt}}\n\n[Answer]\n{{response}}',
    vars: ['prompt', 'response'],
    required: ['prompt', 'response'],
  },
} as const satisfies Record<string, TemplateSpec>;

export type TemplateName = keyof typeof TEMPLATES;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Names of the placeholders in `template`, in order of first appearance. */
export function placeholders(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (!out.includes(m[1]!)) out.push(m[1]!);
  return out;
}

/** Checks `text` as the template `name`: only known variables, all required ones, no stray braces. */
export function validateTemplate(name: TemplateName, text: unknown, where = `template '${name}'`): string {
  const spec: TemplateSpec = TEMPLATES[name];
  if (typeof text !== 'string' || text.trim() === '') throw new ElicitError(`${where}: must be a non-empty string`);
  if (text.length > 20_000) throw new ElicitError(`${where}: is ${text.length} characters (at most 20000)`);
  const used = placeholders(text);
  for (const v of used) {
    if (!spec.vars.includes(v)) {
      throw new ElicitError(`${where}: unknown placeholder {{${v}}} (this template can use ${spec.vars.map((x) => `{{${x}}}`).join(', ') || 'none'})`);
    }
  }
  for (const v of spec.required) if (!used.includes(v)) throw new ElicitError(`${where}: must contain {{${v}}}`);
  const stray = text.replace(PLACEHOLDER, '');
  if (/\{\{|\}\}/.test(stray)) throw new ElicitError(`${where}: has '{{' or '}}' that is not a placeholder {{name}}`);
  return text;
}

/** Fills every placeholder of `template` (one pass, no escaping). Throws when a placeholder has no value. */
export function renderTemplate(template: string, vars: Record<string, string | number>, where = 'template'): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new ElicitError(`${where}: no value for placeholder {{${name}}}`);
    return String(v);
  });
}

/** The template texts a strategy uses: defaults, overridden by the config's `templates` (validated). */
export function resolveTemplates<N extends TemplateName>(names: readonly N[], overrides: unknown, where: string): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const n of names) out[n] = TEMPLATES[n].text;
  if (overrides === undefined || overrides === null) return out;
  if (!isRecord(overrides)) throw new ElicitError(`${where}: templates must be an object of template name → text`);
  for (const [k, v] of Object.entries(overrides)) {
    if (!(names as readonly string[]).includes(k)) {
      throw new ElicitError(`${where}: unknown template '${k}' (this strategy uses ${names.join(', ')})`);
    }
    out[k as N] = validateTemplate(k as N, v, `${where}: templates['${k}']`);
  }
  return out;
}

/** `name@hash`: names a template in provenance and tells an edited one from the default (FNV-1a, 32 bits). */
export function templateId(name: TemplateName, text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${name}@${h.toString(16).padStart(8, '0')}`;
}
