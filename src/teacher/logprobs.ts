// Normalises the per-token logprobs of a chat completion (or of one SSE chunk) into TokenLogprob[]: the OpenAI
// shape `{content: [{token, logprob, bytes, top_logprobs: [{token, logprob}]}]}`, Together's shape
// `{tokens: [], token_logprobs: [], top_logprobs: [{token: logprob}]}` and a bare number (one token, the chunk's
// text). Server data is untrusted: anything else is a 'malformed' TeacherError naming where it was found.

import { TeacherError } from './types.ts';
import type { TokenLogprob, TopLogprob } from './types.ts';

function bad(where: string, what: string): never {
  throw new TeacherError('malformed', `${where}: ${what}`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function num(where: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v)) bad(where, `logprob is not a number (${typeof v})`);
  if (v > 1e-6) bad(where, `logprob ${v} is positive`);
  return Math.min(v, 0);
}

function str(where: string, v: unknown): string {
  if (typeof v !== 'string') bad(where, `token is not a string (${typeof v})`);
  return v;
}

function bytesOf(where: string, v: unknown): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) bad(where, 'bytes is not a list of bytes');
  return v as number[];
}

function sortTop(top: TopLogprob[], k: number): TopLogprob[] {
  return top.sort((a, b) => b.logprob - a.logprob).slice(0, k);
}

/**
 * Returns null when the server sent no logprobs here (`null`/absent, or OpenAI's `{content: null}`), else the
 * tokens. `text` is the chunk's text (used by the bare-number shape); `k` caps the alternatives kept per token.
 */
export function normalizeLogprobs(raw: unknown, text: string, k: number, where: string): TokenLogprob[] | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'number') return [{ token: text, logprob: num(where, raw), top: [] }];
  if (!isRecord(raw)) bad(where, `logprobs has an unknown shape (${Array.isArray(raw) ? 'array' : typeof raw})`);

  if ('content' in raw) {
    if (raw.content === null || raw.content === undefined) return null;
    if (!Array.isArray(raw.content)) bad(where, 'logprobs.content is not a list');
    return raw.content.map((t: unknown, i) => {
      const w = `${where}.content[${i}]`;
      if (!isRecord(t)) bad(w, 'not an object');
      const tops = t.top_logprobs ?? [];
      if (!Array.isArray(tops)) bad(w, 'top_logprobs is not a list');
      const top = tops.map((a: unknown, j) => {
        if (!isRecord(a)) bad(`${w}.top_logprobs[${j}]`, 'not an object');
        return { token: str(`${w}.top_logprobs[${j}]`, a.token), logprob: num(`${w}.top_logprobs[${j}]`, a.logprob) };
      });
      const out: TokenLogprob = { token: str(w, t.token), logprob: num(w, t.logprob), top: sortTop(top, k) };
      const bytes = bytesOf(w, t.bytes);
      if (bytes) out.bytes = bytes;
      return out;
    });
  }

  if ('tokens' in raw || 'token_logprobs' in raw) {
    const tokens = raw.tokens;
    const lps = raw.token_logprobs;
    if (!Array.isArray(tokens) || !Array.isArray(lps) || tokens.length !== lps.length) {
      bad(where, 'Together-style logprobs need lists tokens and token_logprobs of equal length');
    }
    const tops = raw.top_logprobs ?? null;
    if (tops !== null && (!Array.isArray(tops) || tops.length !== tokens.length)) bad(where, 'top_logprobs must be a list as long as tokens');
    return tokens.map((tok: unknown, i) => {
      const w = `${where}.tokens[${i}]`;
      const entry: unknown = tops ? tops[i] : null;
      const top: TopLogprob[] = [];
      if (entry !== null && entry !== undefined) {
        if (!isRecord(entry)) bad(w, 'top_logprobs entry is not an object of token → logprob');
        for (const [token, lp] of Object.entries(entry)) top.push({ token, logprob: num(w, lp) });
      }
      return { token: str(w, tok), logprob: num(w, lps[i]), top: sortTop(top, k) };
    });
  }
  bad(where, `logprobs has an unknown shape (keys ${Object.keys(raw).slice(0, 5).join(', ')})`);
}
