// RL's rewards from the teacher as a judge (issue #24), exactly once: the engine asks the page's judge (the active
// teacher through src/elicit/judge.ts: the API key never leaves the page) for one grade per answer, and stores every
// grade it receives beside the run's checkpoints, named by the step, its phase and the answer's index, with a hash
// of the prompt and answer. A step redone after a reload or a failure samples the same answers (seeded by the
// step, from the same checkpoint) and finds their grades stored: nothing is asked twice. A stored grade whose hash
// differs (another answer) is asked again and replaced.
// Grades 1..max become rewards (s − 1)/(max − 1) in [0, 1]; an unreadable grade takes the mean reward of the readable
// ones of its group (advantage 0: it teaches nothing), else of the batch; none readable is an error saying why.
import type { JudgeGrade, JudgeItem } from '../../elicit/judge.ts';
import type { RewardAt, RewardFn } from '../../train/rl.ts';

/** The page's judge: grades of the items, in order (one item per call here). */
export type JudgeFn = (items: JudgeItem[]) => Promise<JudgeGrade[]>;

export interface GradeStore {
  get(name: string): Promise<Uint8Array | undefined>;
  put(name: string, bytes: Uint8Array): Promise<void>;
}

export interface JudgeRewardOptions {
  judge: JudgeFn;
  store: GradeStore;
  scoreMax: number;
  /** Answers per prompt in a training batch (the group whose readable grades stand in for an unreadable one). */
  G: number;
  /** The judge's view of a sample: its prompt and answer as text. */
  text(prompt: readonly number[], completion: readonly number[]): JudgeItem;
  /** Told after each call: answers graded now, found stored, unreadable. */
  onGrades?(s: { asked: number; stored: number; unreadable: number }): void;
}

/** FNV-1a (32-bit) of a string: which answer a stored grade belongs to. */
function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const gradeName = (at: RewardAt, i: number) => `judge-${at.phase}-${at.step}-${at.first + i}`;

export function judgeReward(o: JudgeRewardOptions): RewardFn {
  return async (prompts, completions, at) => {
    if (!at) throw new Error('judge reward: the caller must say which step and phase the answers belong to (grades are stored by them)');
    const n = completions.length;
    const items = completions.map((c, i) => o.text(prompts[i]!, c));
    const hashes = items.map((it) => fnv(`${it.prompt}\u0000${it.response}`));
    const grades: (number | null)[] = new Array(n).fill(null);
    const known = new Array<boolean>(n).fill(false);
    let stored = 0;
    await Promise.all(items.map(async (_, i) => {
      const bytes = await o.store.get(gradeName(at, i));
      if (!bytes) return;
      const g = JSON.parse(new TextDecoder().decode(bytes)) as { h: number; s: number | null };
      if (g.h !== hashes[i]) return;
      grades[i] = g.s;
      known[i] = true;
      stored++;
    }));
    const missing = items.flatMap((_, i) => (known[i] ? [] : [i]));
    const reasons: string[] = [];
    // Each grade is stored as soon as it arrives: a failure part-way keeps the others.
    const settled = await Promise.allSettled(missing.map(async (i) => {
      const got = await o.judge([items[i]!]);
      const g = got[0];
      if (!g || (g.score !== null && !(Number.isInteger(g.score) && g.score >= 1 && g.score <= o.scoreMax))) throw new Error(`judge: answer ${i} got ${JSON.stringify(g)}, expected a score 1..${o.scoreMax} or null`);
      grades[i] = g.score;
      if (g.score === null) reasons.push(g.reason);
      await o.store.put(gradeName(at, i), new TextEncoder().encode(JSON.stringify({ h: hashes[i], s: g.score })));
    }));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    const rewards = grades.map((s) => (s === null ? NaN : (s - 1) / (o.scoreMax - 1)));
    const unreadable = rewards.filter((r) => Number.isNaN(r)).length;
    o.onGrades?.({ asked: missing.length, stored, unreadable });
    if (unreadable === n) throw new Error(`the judge's grades could not be read for any of ${n} answers${reasons[0] ? ` (${reasons[0]})` : ''}: the teacher must end its grade with "Score: N"; try another teacher`);
    const mean = (xs: number[]) => { const r = xs.filter((x) => !Number.isNaN(x)); return r.length ? r.reduce((a, b) => a + b, 0) / r.length : NaN; };
    const all = mean(rewards), G = at.phase === 'train' ? o.G : 1;
    return rewards.map((r, i) => {
      if (!Number.isNaN(r)) return r;
      const g0 = Math.floor(i / G) * G, group = mean(rewards.slice(g0, g0 + G));
      return Number.isNaN(group) ? all : group;
    });
  };
}
