// RL's rewards from the teacher as a judge (issue #24): src/elicit/judge.ts grades one answer with the feedback rubric
// (the score parsed from untrusted text, null with a reason when unreadable; retryable teacher errors retried), and
// src/engine/runs/judge-reward.ts turns grades into rewards (s − 1)/(max − 1), stores each grade by phase, step and
// index (asked once; a stored grade of another answer is asked again), and gives an unreadable grade its group's mean
// (the batch's when the whole group is unreadable; an error when nothing is readable).
import { describe, expect, it } from 'vitest';
import { judgeOne, type JudgeItem } from '../../src/elicit/judge.ts';
import type { TeacherLike } from '../../src/elicit/types.ts';
import { judgeReward } from '../../src/engine/runs/judge-reward.ts';
import { TeacherError, type ChatMessage } from '../../src/teacher/types.ts';

/** A teacher that answers with `reply(the grading request)`; throws a retryable 429 on the first `fail` calls. */
function teacher(reply: (content: string) => string, fail = 0): TeacherLike & { calls: number } {
  const t = {
    calls: 0,
    settings: { model: 'judge', baseURL: 'http://127.0.0.1:1/v1' },
    async chat(messages: ChatMessage[]) {
      t.calls++;
      if (t.calls <= fail) throw new TeacherError('rate-limit', 'slow down', 429);
      return { choices: [{ text: reply(messages[0]!.content), finishReason: 'stop' }], usage: { input: 1, output: 1 } } as never;
    },
  };
  return t;
}

describe('judge: one answer graded with the feedback rubric', () => {
  it('parses the score, retries a retryable error, and gives null with why when the text has no score', async () => {
    const t = teacher((c) => (c.includes('[Response]\ngood') ? 'Fine work.\nScore: 9' : c.includes('[Response]\nbad') ? 'Poor.\nScore: 2' : 'I cannot say.'), 2);
    expect(await judgeOne(t, { prompt: 'Say it', response: 'good' }, { retryDelayMs: 1 })).toEqual({ score: 9 });
    expect(t.calls).toBe(3); // two rate limits, then the answer
    expect(await judgeOne(t, { prompt: 'Say it', response: 'bad' })).toEqual({ score: 2 });
    const none = await judgeOne(t, { prompt: 'Say it', response: 'meh' });
    expect(none.score).toBeNull();
    expect(t.calls).toBe(5);
  });
});

describe('judge reward', () => {
  const store = () => {
    const m = new Map<string, Uint8Array>();
    return { m, get: async (k: string) => m.get(k), put: async (k: string, v: Uint8Array) => { m.set(k, v); } };
  };
  const text = (p: readonly number[], c: readonly number[]): JudgeItem => ({ prompt: p.join(' '), response: c.join(' ') });
  /** Grades by the answer's first token: 1..10 as is, 0 = unreadable. */
  const judgeBy = (asked: JudgeItem[]) => async (items: JudgeItem[]) => items.map((it) => {
    asked.push(it);
    const s = Number(it.response.split(' ')[0]);
    return s === 0 ? { score: null, reason: 'no "Score: N" line' } : { score: s };
  });

  it('rewards (s − 1)/9; each grade asked once and stored; unreadable ones take their group\'s (else the batch\'s) mean', async () => {
    const asked: JudgeItem[] = [], st = store();
    const reward = judgeReward({ judge: judgeBy(asked), store: st, scoreMax: 10, G: 2, text });
    const prompts = [[1], [1], [2], [2], [3], [3]];
    const answers = [[10], [4], [0], [7], [0], [0]];
    const r = await reward(prompts, answers, { phase: 'train', step: 3, first: 0 });
    const group2 = 6 / 9, batch = (1 + 3 / 9 + 6 / 9) / 3;
    expect(r.map((x) => +x.toFixed(12))).toEqual([1, 3 / 9, group2, group2, batch, batch].map((x) => +x.toFixed(12)));
    expect(asked).toHaveLength(6);
    expect([...st.m.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `judge-train-3-${i}`).sort());
    // Again (a step redone): nothing asked; another answer at index 1 is asked again, alone.
    expect(await reward(prompts, answers, { phase: 'train', step: 3, first: 0 })).toEqual(r);
    expect(asked).toHaveLength(6);
    const changed = answers.map((a, i) => (i === 1 ? [9] : a));
    expect((await reward(prompts, changed, { phase: 'train', step: 3, first: 0 }))[1]).toBeCloseTo(8 / 9, 12);
    expect(asked).toHaveLength(7);
    // An evaluation's answers are stored by their index from `first`.
    await reward([[5]], [[6]], { phase: 'eval', step: 3, first: 16 });
    expect(st.m.has('judge-eval-3-16')).toBe(true);
  });

  it('refuses a call without its step, and a batch with no readable grade, saying why', async () => {
    const reward = judgeReward({ judge: judgeBy([]), store: store(), scoreMax: 10, G: 2, text });
    await expect(Promise.resolve(reward([[1]], [[3]]))).rejects.toThrow(/must say which step and phase/);
    await expect(Promise.resolve(reward([[1], [1]], [[0], [0]], { phase: 'train', step: 1, first: 0 }))).rejects.toThrow(/could not be read for any of 2 answers \(no "Score: N" line\)/);
    const bad = judgeReward({ judge: async () => [{ score: 11 }], store: store(), scoreMax: 10, G: 1, text });
    await expect(Promise.resolve(bad([[1]], [[3]], { phase: 'train', step: 1, first: 0 }))).rejects.toThrow(/expected a score 1..10 or null/);
  });
});
