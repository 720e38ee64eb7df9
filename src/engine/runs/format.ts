// Chat records → the student's token sequences, and prompts → the text the student continues. Three formats
// (RecordFormat; types.ts RunFormat names the first two):
//   continuation  what a base LM saw when it answered (the local teacher renders a tokenizer without a chat
//                 template this way): the non-assistant contents joined by blank lines, each assistant answer
//                 straight after the text before it, end-of-text at the end; the ids the tokenizer's
//                 post-processor puts before a text (e.g. Gemma's <bos>) first;
//   chat          SIMPLE_CHAT_TEMPLATE of src/export/dataset-text.ts: `<|role|>\n` + content + `\n` + eos per
//                 message, `<|assistant|>\n` to prompt an answer; saved with the student so exports render alike;
//   template      a model family's own Jinja chat template ({ kind: 'template', template }: the teacher's
//                 tokenizer_config.json `chat_template`, or one the user chose), rendered through
//                 src/tokenizer/chat-template.ts: each assistant content and the special token closing its turn
//                 are targets, the rest context; saved with the student (tokenizer_config.json, GGUF).
// A sequence is encoded segment by segment (each assistant answer alone, the text between answers alone), so the
// answer's tokens are exactly the tokenizer's tokens of the answer: the unit the teacher's top-k rows are per.
// Only assistant segments (and what closes them) are targets: learn = 1.
import { SIMPLE_CHAT_TEMPLATE } from '../../export/dataset-text.ts';
import type { ChatMessage } from '../../store/schema.ts';
import { chatPrompt, chatSegments, turnClosers } from '../../tokenizer/chat-template.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';
import type { RunFormat } from './types.ts';

export const EOS_TOKEN = '<|endoftext|>';

/** A model family's own chat template (Jinja), rendered with the tokenizer's special tokens. */
export interface TemplateFormat {
  kind: 'template';
  template: string;
  /** More template variables (e.g. { enable_thinking: false }). */
  extra?: Record<string, unknown>;
}

export type RecordFormat = RunFormat | TemplateFormat;

const isTemplate = (f: RecordFormat): f is TemplateFormat => typeof f === 'object' && f !== null && f.kind === 'template';

/** How a run renders records: its format, with the chat template resolved at creation for 'template'. */
export function recordFormat(spec: { format: RunFormat; chatTemplate?: string; name: string }): RecordFormat {
  if (spec.format !== 'template') return spec.format;
  if (!spec.chatTemplate) throw new Error(`run ${spec.name}: the 'template' format needs a chat template (the teacher's, or one given)`);
  return { kind: 'template', template: spec.chatTemplate };
}

/** The chat template a student of this format is exported with (undefined: none, a plain LM). */
export function chatTemplateFor(format: RecordFormat): string | undefined {
  if (isTemplate(format)) return format.template;
  return format === 'chat' ? SIMPLE_CHAT_TEMPLATE : undefined;
}

interface Segment {
  text: string;
  learn: boolean;
  /** For assistant segments: the message index (the top-k rows' `turn`). */
  turn?: number;
}

/** Tokenizer facts a template needs (none when the format is not a template). */
type TemplateTok = Pick<TextTokenizer, 'namedSpecial' | 'specialTokens'>;

function needTok(tok: TemplateTok | undefined, what: string): TemplateTok {
  if (!tok) throw new Error(`${what}: a chat-template format needs the tokenizer (its special tokens)`);
  return tok;
}

function segments(messages: readonly ChatMessage[], format: RecordFormat, tok?: TemplateTok): Segment[] {
  if (isTemplate(format)) return chatSegments(format.template, messages, needTok(tok, 'segments'), format.extra ? { extra: format.extra } : {});
  const out: Segment[] = [];
  let pending = '';
  const flush = () => {
    if (pending !== '') out.push({ text: pending, learn: false });
    pending = '';
  };
  messages.forEach((m, i) => {
    if (format === 'chat') {
      if (m.role === 'assistant') {
        pending += '<|assistant|>\n';
        flush();
        out.push({ text: m.content, learn: true, turn: i }, { text: `\n${EOS_TOKEN}`, learn: true });
      } else {
        pending += `<|${m.role}|>\n${m.content}\n${EOS_TOKEN}`;
      }
      return;
    }
    if (m.role === 'assistant') {
      flush();
      out.push({ text: m.content, learn: true, turn: i });
    } else {
      pending += (i === 0 ? '' : '\n\n') + m.content;
    }
  });
  flush();
  return out;
}

export interface EncodedRecord {
  tokens: Uint32Array;
  learn: Uint8Array;
  /** Each assistant message's content tokens: [start, end) in `tokens`, by message index. */
  answers: { turn: number; start: number; end: number }[];
}

/**
 * Encodes one record for training: every segment encoded on its own, then the end-of-text token (a target when
 * the record ends with an answer: the student learns to stop). The continuation format ends every record with
 * it; the chat format closes each answer with it already; a template closes answers with its own token, and
 * gets end-of-text only after a last answer that its template leaves unclosed.
 */
export function encodeRecord(messages: readonly ChatMessage[], format: RecordFormat, tok: TextTokenizer, eos: number): EncodedRecord {
  const ids: number[] = [], learn: number[] = [];
  const answers: EncodedRecord['answers'] = [];
  if (format === 'continuation') for (const id of tok.prefixIds) { ids.push(id); learn.push(0); }
  const segs = segments(messages, format, tok);
  for (const s of segs) {
    const enc = tok.encode(s.text);
    if (s.turn !== undefined) answers.push({ turn: s.turn, start: ids.length, end: ids.length + enc.length });
    for (const id of enc) { ids.push(id); learn.push(s.learn ? 1 : 0); }
  }
  const endsWithAnswer = messages.at(-1)?.role === 'assistant';
  const unclosed = isTemplate(format) && endsWithAnswer && segs.filter((s) => s.learn).at(-1)?.turn !== undefined;
  if (format === 'continuation' || unclosed) {
    ids.push(eos);
    learn.push(endsWithAnswer ? 1 : 0);
  }
  return { tokens: Uint32Array.from(ids), learn: Uint8Array.from(learn), answers };
}

/** The text the student continues to answer `messages` (which must not end with an answer). */
export function promptText(messages: readonly ChatMessage[], format: RecordFormat, tok?: TemplateTok): string {
  if (isTemplate(format)) {
    if (messages.at(-1)?.role === 'assistant') throw new Error('promptText: the messages already hold an assistant answer');
    return chatPrompt(format.template, messages, needTok(tok, 'promptText'), format.extra ? { extra: format.extra } : {});
  }
  const segs = segments(messages, format);
  if (segs.some((s) => s.learn)) throw new Error('promptText: the messages already hold an assistant answer');
  const text = segs.map((s) => s.text).join('');
  return format === 'chat' ? `${text}<|assistant|>\n` : text;
}

/** The prompt's ids: the post-processor's prefix (continuation: e.g. <bos>) and the encoded prompt text. */
export function promptIds(messages: readonly ChatMessage[], format: RecordFormat, tok: TextTokenizer): number[] {
  const ids = tok.encode(promptText(messages, format, tok));
  return format === 'continuation' ? [...tok.prefixIds, ...ids] : ids;
}

/** The ids generation stops at: end-of-text, and the special token(s) the format closes answers with. */
export function stopIds(format: RecordFormat, tok: TextTokenizer, eos: number): number[] {
  const out = new Set([eos]);
  if (isTemplate(format)) {
    for (const t of turnClosers(format.template, tok, format.extra ? { extra: format.extra } : {})) {
      const id = tok.tokenToId(t);
      if (id !== undefined) out.add(id);
    }
  }
  return [...out];
}

/** The student's answer text from its generated ids (end-of-text excluded), as the format closes answers. */
export function answerText(generated: string, format: RecordFormat): string {
  return format === 'chat' ? generated.replace(/\n$/, '') : generated;
}

/** A record's whole text as the format lays it out (what a new BPE vocabulary is trained on). */
export function recordText(messages: readonly ChatMessage[], format: RecordFormat, tok?: TemplateTok): string {
  return segments(messages, format, tok).map((s) => s.text).join('');
}
