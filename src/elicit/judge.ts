// The teacher as a judge of single answers (issue #24: RL's rewards from the teacher): each (prompt, response) is
// graded with the Feedback strategy's rubric (template feedback.grade, a score 1..max), through the elicitation
// layer's retries of retryable teacher errors, and the score is parsed from the teacher's untrusted text
// (text.ts parseScore); an unreadable grade is null, never a guess. Used by the page (the active teacher, local or
// remote; the API key stays in the page) and by Node tests; the engine caches every grade it receives
// (src/engine/runs/judge-reward.ts), so an answer is graded once even across a reload.
import type { ChatOptions } from '../teacher/types.ts';
import { chatWithRetries } from './run.ts';
import { renderTemplate, resolveTemplates } from './templates.ts';
import { parseScore } from './text.ts';
import type { TeacherLike } from './types.ts';

export interface JudgeItem {
  prompt: string;
  response: string;
}

/** One grade: the score 1..max, or null with why when the teacher's text holds no readable score. */
export type JudgeGrade = { score: number } | { score: null; reason: string };

export interface JudgeOptions {
  /** Top of the score scale (default 10). */
  scoreMax?: number;
  /** Another feedback.grade template (checked: it must use {{prompt}} and {{response}}). */
  template?: string;
  /** Tries after a retryable failure (default 8) and the first backoff (default 100 ms, doubled each time). */
  retries?: number;
  retryDelayMs?: number;
  signal?: AbortSignal;
}

/** Grades one answer; rejects only when the teacher fails past its retries (or a non-retryable error). */
export async function judgeOne(teacher: TeacherLike, item: JudgeItem, o: JudgeOptions = {}): Promise<JudgeGrade> {
  const max = o.scoreMax ?? 10;
  const template = resolveTemplates(['feedback.grade'] as const, o.template ? { 'feedback.grade': o.template } : {}, 'judge')['feedback.grade'];
  const content = renderTemplate(template, { prompt: item.prompt, response: item.response, max }, 'feedback.grade');
  // Greedy grading: the same answer gets the same grade from a deterministic teacher.
  const opts: ChatOptions = { temperature: 0, maxTokens: 256, ...(o.signal ? { signal: o.signal } : {}) };
  const r = await chatWithRetries(teacher, [{ role: 'user', content }], opts, o.retries ?? 8, o.retryDelayMs ?? 100);
  const p = parseScore(r.choices[0]?.text ?? '', max);
  return p.score === null ? { score: null, reason: p.reason } : { score: p.score };
}

/** Grades answers concurrently (the teacher's own concurrency limit applies), in order. */
export function judgeAll(teacher: TeacherLike, items: readonly JudgeItem[], o: JudgeOptions = {}): Promise<JudgeGrade[]> {
  return Promise.all(items.map((it) => judgeOne(teacher, it, o)));
}
