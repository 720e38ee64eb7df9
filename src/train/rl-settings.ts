// RL's settings (issue #24; rl-trainer.ts) and their checks: plain data, so the page's method table imports them without
// the GPU code.
import type { AdvantageKind } from './grpo.ts';

/** How RL samples and learns: G answers per prompt, KL weight β, the advantage estimator, the answers' length and
 *  sampling temperature. */
export interface RlSettings {
  G: number;
  beta: number;
  advantage: AdvantageKind;
  maxNewTokens: number;
  temperature: number;
}

export const DEFAULT_RL: RlSettings = { G: 4, beta: 0.1, advantage: 'grpo', maxNewTokens: 24, temperature: 1 };

/** Problems of RL settings, each naming the field and its range. */
export function rlProblems(o: Partial<RlSettings> | undefined, T: number): string[] {
  if (!o) return ['rl: the RL settings are missing'];
  const out: string[] = [];
  if (!Number.isInteger(o.G) || o.G! < 2 || o.G! > 64) out.push(`rl.G (answers per prompt) must be an integer in 2..64, got ${o.G}`);
  if (!(typeof o.beta === 'number' && o.beta >= 0 && o.beta <= 10)) out.push(`rl.beta (the KL weight) must be in [0, 10], got ${o.beta}`);
  if (!['grpo', 'mean', 'rloo'].includes(o.advantage as string)) out.push(`rl.advantage must be 'grpo', 'mean' or 'rloo', got ${JSON.stringify(o.advantage)}`);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens! < 1 || o.maxNewTokens! >= T) out.push(`rl.maxNewTokens (the answers' length) must be an integer in 1..${T - 1} (below the sequence length ${T}), got ${o.maxNewTokens}`);
  if (!(typeof o.temperature === 'number' && o.temperature > 0 && o.temperature <= 2)) out.push(`rl.temperature must be in (0, 2], got ${o.temperature}`);
  return out;
}

