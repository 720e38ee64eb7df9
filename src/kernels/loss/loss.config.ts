// Shared vocabulary of the fused classifier loss (loss.ts launcher, loss.ref.ts reference): the KD objectives,
// the top-k missing-mass policies, their numeric codes in the WGSL, the validation of a configuration (which
// combinations are rejected and why) and the CPU-side validator of top-k ids.

/** KD term of the loss. 'none' = cross-entropy only. */
export const KD_OBJECTIVES = ['none', 'fkl', 'rkl', 'jsd', 'tvd', 'skew_fkl', 'skew_rkl'] as const;
export type KdObjective = (typeof KD_OBJECTIVES)[number];

/** What a sparse (top-k) teacher does with its missing mass 1 − m, m = Σ exp(logprobs). */
export const TOPK_POLICIES = ['renormalize', 'uniform', 'tail-bucket'] as const;
export type TopKPolicy = (typeof TOPK_POLICIES)[number];

/** Codes baked into the WGSL as `const OBJECTIVE / TEACHER / POLICY` (must match classifier_loss.wgsl). */
export const OBJECTIVE_CODE: Record<KdObjective, number> = { none: 0, fkl: 1, rkl: 2, jsd: 3, tvd: 4, skew_fkl: 5, skew_rkl: 6 };
export const TEACHER_CODE = { none: 0, dense: 1, topk: 2 } as const;
export const POLICY_CODE: Record<TopKPolicy, number> = { renormalize: 0, uniform: 1, 'tail-bucket': 2 };

/** Label meaning "no label": the row's CE term (and its CE gradient) is 0. */
export const NO_LABEL = 0xffffffff;

/**
 * Floor of the top-k missing mass 1 − m under 'uniform' and 'tail-bucket', so that the teacher never puts exactly 0
 * on a bin (reverse divergences stay finite when the top-k already holds all the mass in f32).
 */
export const MIN_MISSING_MASS = 1e-12;

/** Largest k the kernel supports (the student's logits at the k ids are kept in workgroup memory). */
export const TOPK_MAX = 1024;

/**
 * The objective the kernel actually evaluates: jsd at β = 0 is fkl and at β = 1 is rkl (TRL's branches), and skew
 * KL at λ = 0 is plain fkl / rkl. Throws on unknown objectives/policies, bad β/λ and infinite divergences.
 */
export function resolveObjective(
  what: string,
  objective: string,
  opts: { beta?: number; lambda?: number; teacher: 'none' | 'dense' | 'topk'; policy?: string; k?: number; V: number },
): KdObjective {
  if (!(KD_OBJECTIVES as readonly string[]).includes(objective)) {
    throw new Error(`${what}: unknown objective '${objective}' (expected one of ${KD_OBJECTIVES.join(', ')})`);
  }
  let obj = objective as KdObjective;
  if (obj !== 'none' && opts.teacher === 'none') throw new Error(`${what}: objective '${obj}' needs a teacher (dense or topk)`);
  if (obj === 'jsd') {
    const beta = opts.beta;
    if (beta === undefined || !(beta >= 0 && beta <= 1)) throw new Error(`${what}: objective 'jsd' needs beta in [0, 1], got ${beta}`);
    if (beta === 0) obj = 'fkl';
    else if (beta === 1) obj = 'rkl';
  }
  if (obj === 'skew_fkl' || obj === 'skew_rkl') {
    const lambda = opts.lambda;
    if (lambda === undefined || !(lambda >= 0 && lambda < 1)) {
      throw new Error(`${what}: objective '${obj}' needs lambda in [0, 1), got ${lambda}`);
    }
    if (lambda === 0) obj = obj === 'skew_fkl' ? 'fkl' : 'rkl';
  }
  if (opts.teacher === 'topk') {
    const policy = opts.policy ?? '';
    if (!(TOPK_POLICIES as readonly string[]).includes(policy)) {
      throw new Error(`${what}: unknown top-k policy '${policy}' (expected one of ${TOPK_POLICIES.join(', ')})`);
    }
    const k = opts.k;
    if (k === undefined || !Number.isInteger(k) || k < 1) throw new Error(`${what}: top-k k must be a positive integer, got ${k}`);
    if (k > opts.V) throw new Error(`${what}: top-k k = ${k} is larger than the vocabulary V = ${opts.V}`);
    if (k > TOPK_MAX) throw new Error(`${what}: top-k k = ${k} is over the kernel's maximum of ${TOPK_MAX}`);
    if (policy === 'renormalize' && obj === 'rkl' && k < opts.V) {
      throw new Error(
        `${what}: objective '${objective}' is infinite under top-k policy 'renormalize' (the teacher is 0 outside the ` +
          `top-k where the student is not); use 'uniform' or 'tail-bucket'`,
      );
    }
  }
  return obj;
}

/**
 * Checks top-k ids (N, k) on the CPU: every id < V and no id twice within a row (the kernel assumes distinct ids).
 * Rows with weight 0 (masked; the kernel never reads their ids) are skipped when `weights` is given.
 */
export function validateTopK(ids: ArrayLike<number>, N: number, k: number, V: number, weights?: ArrayLike<number>): void {
  if (ids.length < N * k) throw new Error(`validateTopK: ids has ${ids.length} elements, needs N·k = ${N}·${k}`);
  if (k > V) throw new Error(`validateTopK: k = ${k} is larger than the vocabulary V = ${V}`);
  const seen = new Map<number, number>();
  for (let n = 0; n < N; n++) {
    if (weights && weights[n] === 0) continue;
    seen.clear();
    for (let r = 0; r < k; r++) {
      const id = ids[n * k + r]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`validateTopK: row ${n}, slot ${r}: id ${id} is not in [0, V = ${V})`);
      const prev = seen.get(id);
      if (prev !== undefined) throw new Error(`validateTopK: row ${n}: id ${id} appears twice (slots ${prev} and ${r})`);
      seen.set(id, r);
    }
  }
}
