// Learning-rate schedule: linear warmup to `lr`, then cosine decay to `lr · minLrRatio` at `totalSteps`.

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number;
}

/** The learning rate of 1-based step `step`. */
export function lrAt(step: number, s: LrSchedule): number {
  if (step <= s.warmupSteps) return (s.lr * step) / Math.max(1, s.warmupSteps);
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const t = Math.min(1, (step - s.warmupSteps) / span);
  const min = s.lr * s.minLrRatio;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * t));
}
