// Chat records → the student's token sequences, and prompts → the text the student continues. Two formats
// (types.ts RunFormat):
//   continuation  what a base LM saw when it answered (the local teacher renders a tokenizer without a chat
//                 template this way): the non-assistant contents joined by blank lines, each assistant answer
//                 straight after the text before it, end-of-text at the end.
//   chat          SIMPLE_CHAT_TEMPLATE of src/export/dataset-text.ts: `<|role|>\n` + content + `\n` + eos per
//                 message, `<|assistant|>\n` to prompt an answer; saved with the student so exports render alike.
// A sequence is encoded segment by segment (each assistant answer alone, the text between answers alone), so the
// answer's tokens are exactly the tokenizer's tokens of the answer: the unit the teacher's top-k rows are per.
// Only assistant segments (and what closes them) are targets: learn = 1.
import { SIMPLE_CHAT_TEMPLATE } from '../../export/dataset-text.ts';
import type { ChatMessage } from '../../store/schema.ts';
import type { BpeTokenizer } from '../../tokenizer/bpe.ts';
import type { RunFormat } from './types.ts';

export const EOS_TOKEN = '<|endoftext|>';

/** The chat template a student of this format is exported with (undefined: none, a plain LM). */
export function chatTemplateFor(format: RunFormat): string | undefined {
  return format === 'chat' ? SIMPLE_CHAT_TEMPLATE : undefined;
}

interface Segment {
  text: string;
  learn: boolean;
  /** For assistant segments: the message index (the top-k rows' `turn`) and the length of its content part. */
  turn?: number;
}

function segments(messages: readonly ChatMessage[], format: RunFormat): Segment[] {
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
 * it; the chat format closes each answer with it already.
 */
export function encodeRecord(messages: readonly ChatMessage[], format: RunFormat, tok: BpeTokenizer, eos: number): EncodedRecord {
  const ids: number[] = [], learn: number[] = [];
  const answers: EncodedRecord['answers'] = [];
  for (const s of segments(messages, format)) {
    const enc = tok.encode(s.text);
    if (s.turn !== undefined) answers.push({ turn: s.turn, start: ids.length, end: ids.length + enc.length });
    for (const id of enc) { ids.push(id); learn.push(s.learn ? 1 : 0); }
  }
  if (format === 'continuation') {
    ids.push(eos);
    learn.push(messages.at(-1)?.role === 'assistant' ? 1 : 0);
  }
  return { tokens: Uint32Array.from(ids), learn: Uint8Array.from(learn), answers };
}

/** The text the student continues to answer `messages` (which must not end with an answer). */
export function promptText(messages: readonly ChatMessage[], format: RunFormat): string {
  const segs = segments(messages, format);
  if (segs.some((s) => s.learn)) throw new Error('promptText: the messages already hold an assistant answer');
  const text = segs.map((s) => s.text).join('');
  return format === 'chat' ? `${text}<|assistant|>\n` : text;
}

/** The student's answer text from its generated ids (end-of-text excluded), as the format closes answers. */
export function answerText(generated: string, format: RunFormat): string {
  return format === 'chat' ? generated.replace(/\n$/, '') : generated;
}

/** A record's whole text as the format lays it out (what a new BPE vocabulary is trained on). */
export function recordText(messages: readonly ChatMessage[], format: RunFormat): string {
  return segments(messages, format).map((s) => s.text).join('');
}
