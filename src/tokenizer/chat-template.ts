// Chat templates: conversations rendered the way a model family expects (its tokenizer_config.json `chat_template`,
// a Jinja template) through @huggingface/jinja — the engine transformers.js renders them with — with the same
// variables transformers' `apply_chat_template` passes (messages, add_generation_prompt, the special tokens
// bos_token / eos_token / pad_token / unk_token, raise_exception). tests/unit/chat-template.test.ts checks the text
// against transformers' apply_chat_template for Qwen3, Llama-3 and Gemma-3.
//
// For training, chatSegments() cuts the rendered text into what the student learns and what it only reads:
//   - each assistant message's rendered content (found by rendering the conversation once more with that content
//     replaced by a marker: the text the template puts before and after it is what the two renderings share), and
//     the turn's closing — the special token that follows it, with any whitespace before it (`<|im_end|>`,
//     `<|eot_id|>`, `<end_of_turn>`, ...) — are targets (learn = true, `turn` = the message index);
//   - what the template puts between its generation prompt and the content (Qwen3's empty `<think>\n\n</think>`
//     block when thinking is on) is a target too: after the prompt a model is asked with, it must write it;
//   - everything else (system and user turns, role headers, the generation prompt) is context (learn = false).
// The segments concatenate to exactly the rendered text. A template that rewrites an answer (Qwen3 moving a
// `<think>` block) still works: the learned span is the part of the rendering that differs from the marker's.
import { Template } from '@huggingface/jinja';
import type { NamedSpecialTokens, TextTokenizer } from './types.ts';

export interface TemplateMessage {
  role: string;
  content: string;
}

export interface RenderOptions {
  /** End with the text that asks for an assistant answer (the template's add_generation_prompt branch). */
  addGenerationPrompt?: boolean;
  /** bos_token, eos_token, ... (default: none); null or absent ones are not passed, as in transformers. */
  special?: Partial<NamedSpecialTokens>;
  /** More template variables, e.g. { enable_thinking: false } for Qwen3. */
  extra?: Record<string, unknown>;
}

export interface ChatSegment {
  text: string;
  learn: boolean;
  /** The assistant message whose content this segment is (its index in the messages). */
  turn?: number;
}

const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new Error(`chat template: cannot parse it: ${(e as Error)?.message ?? String(e)}`);
    }
    if (compiled.size >= 16) compiled.clear();
    compiled.set(template, t);
  }
  return t;
}

/** The text of `messages` under `template`, as transformers' apply_chat_template(tokenize=False) renders it. */
export function renderChat(template: string, messages: readonly TemplateMessage[], o: RenderOptions = {}): string {
  const vars: Record<string, unknown> = {
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    add_generation_prompt: o.addGenerationPrompt === true,
  };
  for (const [k, v] of Object.entries(o.special ?? {})) if (typeof v === 'string' && v !== '') vars[`${k}_token`] = v;
  Object.assign(vars, o.extra ?? {});
  try {
    return compile(template).render(vars);
  } catch (e) {
    throw new Error(`chat template: rendering failed: ${(e as Error)?.message ?? String(e)}`);
  }
}

function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** Length of the longest common suffix of `a` and `b`, in UTF-16 code units. */
export function commonSuffix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

/** Options for a tokenizer's template: its named special tokens unless given. */
function withSpecial(tok: Pick<TextTokenizer, 'namedSpecial'>, o: RenderOptions): RenderOptions {
  return { ...o, special: o.special ?? tok.namedSpecial ?? {} };
}

/** The closing at the start of `rest`: whitespace then one of the special tokens (longest first), or ''. */
function closingOf(rest: string, specials: readonly string[]): string {
  const ws = /^\s*/.exec(rest)![0];
  const sp = specials.find((s) => rest.startsWith(s, ws.length));
  return sp === undefined ? '' : ws + sp;
}

/** The rendered conversation cut into targets (assistant contents and their closings) and context; see above. */
export function chatSegments(template: string, messages: readonly TemplateMessage[], tok: Pick<TextTokenizer, 'namedSpecial' | 'specialTokens'>, o: RenderOptions = {}): ChatSegment[] {
  const opts = withSpecial(tok, { ...o, addGenerationPrompt: false });
  const full = renderChat(template, messages, opts);
  const specials = [...tok.specialTokens].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  const out: ChatSegment[] = [];
  let cursor = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const mark = `\uE000answer ${i}\uE001`;
    const marked = renderChat(template, messages.map((x, j) => (j === i ? { role: x.role, content: mark } : x)), opts);
    const at = marked.indexOf(mark);
    if (at < 0 || marked.indexOf(mark, at + 1) >= 0) return; // the template does not show this answer (once): no target
    const start = Math.max(commonPrefix(full, marked.slice(0, at)), cursor);
    const end = Math.max(start, full.length - commonSuffix(full, marked.slice(at + mark.length)));
    const close = closingOf(full.slice(end), specials);
    // The generation prompt for this turn: where the model starts writing when asked.
    const asked = renderChat(template, messages.slice(0, i), { ...opts, addGenerationPrompt: true });
    const from = full.startsWith(asked) && asked.length >= cursor && asked.length < start ? asked.length : start;
    if (from > cursor) out.push({ text: full.slice(cursor, from), learn: false });
    if (start > from) out.push({ text: full.slice(from, start), learn: true });
    out.push({ text: full.slice(start, end), learn: true, turn: i });
    if (close) out.push({ text: close, learn: true });
    cursor = end + close.length;
  });
  if (cursor < full.length) out.push({ text: full.slice(cursor), learn: false });
  return out;
}

/** The prompt text that asks the model for the next assistant message. */
export function chatPrompt(template: string, messages: readonly TemplateMessage[], tok: Pick<TextTokenizer, 'namedSpecial'>, o: RenderOptions = {}): string {
  return renderChat(template, messages, withSpecial(tok, { ...o, addGenerationPrompt: true }));
}

/** The special tokens the template closes an assistant turn with (what generation stops at), found by rendering. */
export function turnClosers(template: string, tok: Pick<TextTokenizer, 'namedSpecial' | 'specialTokens'>, o: RenderOptions = {}): string[] {
  const segs = chatSegments(template, [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], tok, o);
  const close = segs.find((s, i) => s.learn && s.turn === undefined && segs[i - 1]?.turn !== undefined);
  return close ? [close.text.trim()] : [];
}
