// Text utilities of the elicitation strategies, all on untrusted model text: word tokens and ROUGE-L (the
// Self-Instruct similarity filter), numbered-list parsing, a robust 1..max score parser and yes/no verdict parser
// for teacher judgements, final-answer extraction and majority vote (self-consistency), and the Evol-Instruct
// elimination checks. Pure functions, no I/O.

// ---------------------------------------------------------------------------------------------------- ROUGE-L

/** Lower-cased word tokens: maximal runs of Unicode letters and digits. */
export function wordTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Length of the longest common subsequence of two token lists (O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** ROUGE-L F1 of two texts on word tokens: LCS-based precision P = lcs/|cand|, recall R = lcs/|ref|, F = 2PR/(P+R). */
export function rougeL(candidate: string | readonly string[], reference: string | readonly string[]): number {
  const c = typeof candidate === 'string' ? wordTokens(candidate) : candidate;
  const r = typeof reference === 'string' ? wordTokens(reference) : reference;
  const lcs = lcsLength(c, r);
  if (lcs === 0) return 0;
  const p = lcs / c.length;
  const q = lcs / r.length;
  return (2 * p * q) / (p + q);
}

/** The highest ROUGE-L F of `candidate` against any text of `pool` (0 for an empty pool). */
export function maxRougeL(candidate: string, pool: readonly (readonly string[])[]): number {
  const c = wordTokens(candidate);
  let best = 0;
  for (const r of pool) {
    best = Math.max(best, rougeL(c, r));
    if (best >= 1) break;
  }
  return best;
}

// ------------------------------------------------------------------------------------------------------ lists

const LIST_MARK = /^\s*(?:(?:task|question|instruction|q)\s*#?\s*\d{1,4}\s*[.):-]|\d{1,4}\s*[.):]|#\s*\d{1,4}\s*[.):]?|[-*•])\s*/i;

/** The items of a (numbered or bulleted) list, one per line: markers, quotes and bold markers stripped. */
export function parseList(text: string, maxItems = 100): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.replace(LIST_MARK, '').trim();
    line = line.replace(/^\*\*(.*)\*\*$/, '$1').replace(/^"(.*)"$/, '$1').trim();
    if (line === '') continue;
    out.push(line);
    if (out.length >= maxItems) break;
  }
  return out;
}

// ----------------------------------------------------------------------------------------------- judgements

/** Judge text is scanned up to this many characters (longer text is suspicious and is not read further). */
export const MAX_JUDGEMENT_CHARS = 20_000;

const NUM = String.raw`(-?\d{1,6}(?:\.\d+)?)`;
const LABELLED = new RegExp(String.raw`\b(?:score|rating|grade|mark)\b\s*(?:\*\*)?\s*(?:is|of|=|:|-)?\s*(?:\*\*)?\s*\[{0,2}\s*${NUM}\s*\]{0,2}(?:\s*(?:\/|out\s+of)\s*(\d{1,6}))?`, 'gi');
const BRACKETED = new RegExp(String.raw`\[\[\s*${NUM}\s*\]\]`, 'g');
const FRACTION = new RegExp(String.raw`(?<![\w.\/-])${NUM}\s*(?:\/|out\s+of)\s*(\d{1,6})\b`, 'gi');

export type ScoreParse = { score: number } | { score: null; reason: string };

/**
 * A score 1..max from a judge's untrusted text. In order of precedence: a labelled score ("Score: 7",
 * "Rating: 8/10", "**Score:** 6"), a bracketed "[[7]]", a bare fraction "7/10", or a reply that is only a number.
 * Within the first kind that occurs, every occurrence must agree; a conflict ("Score: 10 … Score: 1"), a value
 * outside 1..max or not an integer, a denominator other than max, or no score at all → unparseable (null + why).
 */
export function parseScore(text: string, max = 10): ScoreParse {
  if (typeof text !== 'string') return { score: null, reason: 'not text' };
  if (text.length > MAX_JUDGEMENT_CHARS) return { score: null, reason: `the judgement is over ${MAX_JUDGEMENT_CHARS} characters` };
  const t = text.normalize('NFKC');
  const kinds: [string, RegExp][] = [['labelled', LABELLED], ['bracketed', BRACKETED], ['fraction', FRACTION]];
  for (const [kind, re] of kinds) {
    const found = [...t.matchAll(re)].map((m) => ({ value: m[1]!, denom: m[2] }));
    if (found.length === 0) continue;
    const values = new Set<number>();
    for (const f of found) {
      if (f.denom !== undefined && Number(f.denom) !== max) return { score: null, reason: `${kind} score out of ${f.denom}, expected out of ${max}` };
      const v = Number(f.value);
      if (!Number.isInteger(v) || v < 1 || v > max) return { score: null, reason: `${kind} score ${f.value} is not an integer in 1..${max}` };
      values.add(v);
    }
    if (values.size > 1) return { score: null, reason: `conflicting ${kind} scores ${[...values].join(', ')}` };
    return { score: [...values][0]! };
  }
  const bare = /^\s*(?:\*\*)?\s*(\d{1,3})\s*(?:\*\*)?\s*\.?\s*$/.exec(t);
  if (bare) {
    const v = Number(bare[1]);
    return v >= 1 && v <= max ? { score: v } : { score: null, reason: `score ${v} is not in 1..${max}` };
  }
  return { score: null, reason: 'no score found' };
}

const YES = new Set(['yes', 'correct', 'true', 'right', 'valid']);
const NO = new Set(['no', 'incorrect', 'false', 'wrong', 'invalid']);

/**
 * A yes/no verdict from untrusted text: a labelled verdict ("Verdict: yes", "Answer: no", "Judgement: correct")
 * wins when all labelled ones agree; else the first word ("Yes, ...", "**No**."); else a lone standalone yes/no
 * word. Both words, conflicting verdicts, negated forms ("not correct" counts as no) mixed with yes, or nothing → null.
 */
export function parseYesNo(text: string): boolean | null {
  if (typeof text !== 'string' || text.length > MAX_JUDGEMENT_CHARS) return null;
  const t = text.normalize('NFKC').toLowerCase();
  const verdict = (w: string): boolean | null => (YES.has(w) ? true : NO.has(w) ? false : null);
  const labelled = [...t.matchAll(/\b(?:verdict|answer|judgement|judgment|decision|final answer)\b\s*(?:\*\*)?\s*[:=-]\s*(?:\*\*)?\s*["'“]?\s*(not\s+)?([a-z]+)/g)]
    .map((m) => { const v = verdict(m[2]!); return v === null ? null : m[1] ? !v : v; })
    .filter((v): v is boolean => v !== null);
  if (labelled.length > 0) return labelled.every((v) => v === labelled[0]) ? labelled[0]! : null;
  const first = /^[\s*_#>"'“`(]*([a-z]+)/.exec(t);
  if (first) {
    const v = verdict(first[1]!);
    if (v !== null) return v;
  }
  const words = t.match(/\b(?:not\s+)?(?:yes|no)\b/g) ?? [];
  const vals = new Set(words.map((w) => (w.startsWith('not') ? !w.endsWith('yes') : w === 'yes')));
  return vals.size === 1 ? [...vals][0]! : null;
}

// ---------------------------------------------------------------------------------------- self-consistency

/**
 * The final answer of a sample, normalised for voting: the text after the last "####" or "answer is/:" marker,
 * or a \boxed{...}, else the last number in the text, else the whole text; lower-cased, whitespace collapsed,
 * trailing punctuation and thousands separators removed.
 */
export function finalAnswer(sample: string): string {
  const t = sample.trim();
  let a: string | undefined;
  const boxed = [...t.matchAll(/\\boxed\{([^{}]{1,200})\}/g)].at(-1);
  const hashes = t.lastIndexOf('####');
  const marker = [...t.matchAll(/\b(?:final answer|answer)\s*(?:is|:)\s*([^\n]{1,200})/gi)].at(-1);
  if (boxed) a = boxed[1];
  else if (hashes >= 0) a = t.slice(hashes + 4).split('\n')[0];
  else if (marker) a = marker[1];
  else {
    const nums = t.match(/-?\d[\d,]*(?:\.\d+)?/g);
    a = nums ? nums.at(-1) : t;
  }
  let n = (a ?? '').toLowerCase().replace(/\s+/g, ' ').trim();
  if (/^-?\d[\d,]*(?:\.\d+)?$/.test(n.replace(/[.!?;:]+$/, ''))) n = n.replace(/[.!?;:]+$/, '').replace(/,/g, '');
  return n.replace(/[\s.!?;:*_`"']+$/, '').replace(/^[\s*_`"']+/, '');
}

/** The most frequent non-empty answer and its count (ties: the one seen first). */
export function majority(answers: readonly string[]): { answer: string; count: number } | null {
  const counts = new Map<string, number>();
  for (const a of answers) if (a !== '') counts.set(a, (counts.get(a) ?? 0) + 1);
  let best: { answer: string; count: number } | null = null;
  for (const [answer, count] of counts) if (!best || count > best.count) best = { answer, count };
  return best;
}

// --------------------------------------------------------------------------------------- Evol-Instruct rules

const STOPWORDS = new Set(
  'a an the and or but if of to in on at by for with from as is are was were be been it this that these those i you he she we they me my your our their not no so do does did can could would should will just than then there here what which who whom how why when where'.split(' '),
);

/** True when the text has no word other than stop words (empty, punctuation only, "the of and"). */
export function onlyStopwords(text: string): boolean {
  return wordTokens(text).every((w) => STOPWORDS.has(w));
}

/** Markers of an evolution that copied the rewriting prompt instead of rewriting (WizardLM's rule 4). */
const COPY_MARKERS = /#\s*(?:given|rewritten|created)\s+prompt\s*#|\b(?:given prompt|rewritten prompt|created prompt)\b/i;

export type EvolFailure = 'empty' | 'copy-of-input' | 'copies-prompt' | 'refusal' | 'empty-answer' | 'trivial-answer';

/**
 * WizardLM's elimination rules for one evolution (instruction → evolved, answered by `answer`): the evolved
 * instruction is empty, (near) a copy of the input (ROUGE-L F ≥ copyThreshold: no information gain) or copies
 * words of the rewriting prompt; the answer is empty, only punctuation and stop words, or a short refusal
 * ("sorry" in fewer than 80 words). Returns the failure or null when the evolution survives.
 */
export function evolFailure(input: string, evolved: string, answer: string | null, copyThreshold: number): EvolFailure | null {
  if (onlyStopwords(evolved)) return 'empty';
  if (rougeL(evolved, input) >= copyThreshold) return 'copy-of-input';
  if (COPY_MARKERS.test(evolved)) return 'copies-prompt';
  if (answer === null) return null;
  if (answer.trim() === '') return 'empty-answer';
  if (onlyStopwords(answer)) return 'trivial-answer';
  if (/\bsorry\b/i.test(answer) && wordTokens(answer).length < 80) return 'refusal';
  return null;
}

/** Self-Instruct's heuristic filters on a generated instruction; returns why it is dropped, or null. */
export function instructionProblem(instruction: string, minWords: number, maxWords: number): string | null {
  const words = wordTokens(instruction);
  if (words.length < minWords) return `fewer than ${minWords} words`;
  if (words.length > maxWords) return `more than ${maxWords} words`;
  if (/\b(?:image|images|picture|pictures|graph|graphs|photo|photos|file|files|map|maps|draw|plot|go to|video|audio)\b/i.test(instruction)) {
    return 'needs a non-text modality';
  }
  if (/^[^\p{L}\p{N}]/u.test(instruction.trim())) return 'starts with punctuation';
  return null;
}
