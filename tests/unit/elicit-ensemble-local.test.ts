// The ensemble strategy on the teachers we ship and make (issue #23's proof): two local transformers.js teachers of
// different quality — the embedded Brown teacher (public/models/brown-teacher: 4 × 256, 3000 steps) and the small
// fixture teacher (tests/fixtures/brown-teacher-small: 3 × 128, 200 steps, another BPE) — each answer held-out
// Brown prompts twice (temperature 1); ROUGE-L consensus keeps the embedded teacher's answer far more often than
// chance (each teacher gives half the answers). Both run in onnxruntime-node, as the page's local teacher does.
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { heldOutPrompts } from '../../src/data/brown-files.ts';
import { ensembleSummary } from '../../src/elicit/ensemble-choice.ts';
import { createElicitJob, runElicitJob } from '../../src/elicit/run.ts';
import { LocalTeacher } from '../../src/teacher/local.ts';
import { binomialTail } from '../support/binomial.ts';
import { freshStore } from './store-fixtures.ts';

const teachers: LocalTeacher[] = [];
afterAll(async () => { await Promise.all(teachers.map((t) => t.dispose())); });

it('consensus between the embedded Brown teacher and the small fixture teacher keeps the better one\'s answer', async () => {
  const big = await LocalTeacher.load({ kind: 'folder', location: resolve('public/models/brown-teacher') });
  const small = await LocalTeacher.load({ kind: 'folder', location: resolve('tests/fixtures/brown-teacher-small') });
  teachers.push(big, small);
  const { store } = await freshStore();
  const ds = await store.createDataset({ name: 'ensemble of local teachers' });
  const prompts = heldOutPrompts(120);
  expect(prompts.length).toBe(120);
  const job = await createElicitJob(store, ds.id, 'ensemble', {
    inputs: prompts, teachers: [big.settings.model, small.settings.model], answersPerTeacher: 2, maxTokens: 32, temperature: 1, seed: 1,
  });
  const done = await runElicitJob(store, job.id, { teacher: big, members: [big, small] });
  expect(done.status).toBe('done');
  const sum = await ensembleSummary(store, ds.id);
  expect(sum.records).toBe(120);
  const [b, s] = [big, small].map((t) => sum.teachers.find((x) => x.model === t.settings.model)!);
  expect(b!.kept + s!.kept).toBe(120);
  // Measured: 80 of 120 (tail 1e-4); chance would be 60.
  expect(binomialTail(b!.kept, 120)).toBeLessThan(0.01);
  expect(b!.meanConsensus).toBeGreaterThan(s!.meanConsensus);
}, 120_000);
