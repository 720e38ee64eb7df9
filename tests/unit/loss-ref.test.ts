// The classifier-loss CPU reference: closed-form values, the top-k teacher policies by hand, the configuration
// errors, and every objective × teacher policy gradient against central finite differences of the reference loss.
import { describe, expect, it } from 'vitest';
import { KD_OBJECTIVES, NO_LABEL, validateTopK, type KdObjective, type TopKPolicy } from '../../src/kernels/loss/loss.config.ts';
import { classifierLossRef, divergence, teacherBins, type ClassifierLossRefArgs, type TeacherRef } from '../../src/kernels/loss/loss.ref.ts';
import { Rng } from '../../src/util/rng.ts';

const KD_ONLY = KD_OBJECTIVES.filter((o) => o !== 'none');
const POLICIES: TopKPolicy[] = ['renormalize', 'uniform', 'tail-bucket'];
const opts = (o: KdObjective) => ({ beta: o === 'jsd' ? 0.3 : undefined, lambda: o.startsWith('skew') ? 0.2 : undefined });

function logSoftmax64(x: ArrayLike<number>): Float64Array {
  const max = Math.max(...Array.from(x));
  const lse = max + Math.log(Array.from(x).reduce((a, v) => a + Math.exp(v - max), 0));
  return Float64Array.from(x, (v) => v - lse);
}

function base(N: number, V: number, logits: ArrayLike<number>, teacher: TeacherRef | undefined, objective: KdObjective): ClassifierLossRefArgs {
  return {
    N, V, logits, weights: new Float64Array(N).fill(1), teacher, objective, temperature: 1,
    kdWeight: 1, ceWeight: 0, lossScale: 1, ...opts(objective),
  };
}

describe('classifierLossRef closed forms', () => {
  const z = [0.3, -1.2, 2.0, 0.7, -0.4];

  it('gives 0 divergence and 0 gradient for identical student and teacher, every objective, τ = 1 and 2', () => {
    for (const objective of KD_ONLY) {
      for (const temperature of [1, 2]) {
        const r = classifierLossRef({ ...base(1, 5, z, { kind: 'dense', logits: z }, objective), temperature });
        expect(Math.abs(r.losses[0]!), `${objective} τ=${temperature}`).toBeLessThan(1e-15);
        for (const d of r.dz) expect(Math.abs(d), `${objective} τ=${temperature}`).toBeLessThan(1e-15);
      }
    }
  });

  it('gives 0 for a uniform student and a uniform teacher', () => {
    for (const objective of KD_ONLY) {
      const r = classifierLossRef(base(1, 4, [3, 3, 3, 3], { kind: 'dense', logits: [-1, -1, -1, -1] }, objective));
      expect(Math.abs(r.losses[0]!), objective).toBeLessThan(1e-15);
    }
  });

  it('fkl against a one-hot teacher is −log s_y', () => {
    const ls = logSoftmax64(z);
    // top-k k = 1 with all the mass (lp = 0) on token 2: t is one-hot under every policy.
    for (const policy of POLICIES) {
      const r = classifierLossRef(base(1, 5, z, { kind: 'topk', k: 1, ids: [2], logprobs: [0], policy }, 'fkl'));
      expect(r.losses[0]).toBeCloseTo(-ls[2]!, 10);
      // ∂/∂z = s − t.
      z.forEach((_, j) => expect(r.dz[j]).toBeCloseTo(Math.exp(ls[j]!) - (j === 2 ? 1 : 0), 10));
    }
  });

  it('tvd of two known 3-element distributions is ½ Σ|t − s| by hand', () => {
    const { kd, g } = divergence('tvd', Float64Array.of(0.5, 0.3, 0.2), Float64Array.of(0.2, 0.3, 0.5));
    expect(kd).toBeCloseTo(0.3, 15);
    expect([...g]).toEqual([-0.5, 0, 0.5]);
  });

  it('fkl and rkl of known 2-element distributions by hand', () => {
    const t = Float64Array.of(0.75, 0.25);
    const s = Float64Array.of(0.5, 0.5);
    expect(divergence('fkl', t, s).kd).toBeCloseTo(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), 15);
    expect(divergence('rkl', t, s).kd).toBeCloseTo(0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(2), 15);
    // JSD(0.5) with M = [0.625, 0.375].
    const jsd = 0.5 * (0.75 * Math.log(0.75 / 0.625) + 0.25 * Math.log(0.25 / 0.375)) + 0.5 * (0.5 * Math.log(0.5 / 0.625) + 0.5 * Math.log(0.5 / 0.375));
    expect(divergence('jsd', t, s, 0.5).kd).toBeCloseTo(jsd, 15);
  });

  it('cross-entropy is −log softmax(z)_y at temperature 1, and 0 for NO_LABEL rows', () => {
    const r = classifierLossRef({
      ...base(2, 5, [...z, ...z], undefined, 'none'), labels: [3, NO_LABEL], kdWeight: 0, ceWeight: 1, temperature: 2,
    });
    expect(r.losses[1]).toBeCloseTo(-logSoftmax64(z)[3]!, 12);
    expect(r.losses[3]).toBe(0);
    expect([...r.dz.subarray(5)]).toEqual([0, 0, 0, 0, 0]);
  });

  it('jsd at β = 0 is fkl and at β = 1 is rkl (TRL); skew KL at λ = 0 is fkl / rkl', () => {
    const rng = new Rng(3);
    const zs = rng.uniformArray(7, -2, 2);
    const teacher: TeacherRef = { kind: 'dense', logits: rng.uniformArray(7, -2, 2) };
    const run = (objective: KdObjective, beta?: number, lambda?: number) =>
      classifierLossRef({ ...base(1, 7, zs, teacher, objective), beta, lambda, temperature: 2 });
    const fkl = run('fkl');
    const rkl = run('rkl');
    expect(run('jsd', 0)).toEqual(fkl);
    expect(run('jsd', 1)).toEqual(rkl);
    expect(run('skew_fkl', undefined, 0)).toEqual(fkl);
    expect(run('skew_rkl', undefined, 0)).toEqual(rkl);
    // The skew formulas themselves reduce to KL at λ = 0, and JSD's tends to 0 at the ends (hence TRL's branches).
    const t = Float64Array.of(0.6, 0.3, 0.1);
    const s = Float64Array.of(0.2, 0.5, 0.3);
    expect(divergence('skew_fkl', t, s, 0.5, 0).kd).toBeCloseTo(divergence('fkl', t, s).kd, 15);
    expect(divergence('skew_rkl', t, s, 0.5, 0).kd).toBeCloseTo(divergence('rkl', t, s).kd, 15);
    expect(divergence('jsd', t, s, 1e-9).kd).toBeLessThan(1e-8);
  });

  it('builds the top-k teacher of each policy by hand (τ = 1, m = 0.7)', () => {
    const teacher = (policy: TopKPolicy): TeacherRef => ({ kind: 'topk', k: 2, ids: [3, 1], logprobs: [Math.log(0.5), Math.log(0.2)], policy });
    const r = teacherBins(teacher('renormalize'), 0, 5, 1);
    [0, 0.2 / 0.7, 0, 0.5 / 0.7, 0].forEach((v, j) => expect(r.t[j]).toBeCloseTo(v, 14));
    const u = teacherBins(teacher('uniform'), 0, 5, 1);
    [0.1, 0.2, 0.1, 0.5, 0.1].forEach((v, j) => expect(u.t[j]).toBeCloseTo(v, 14));
    const tb = teacherBins(teacher('tail-bucket'), 0, 5, 1);
    [0.5, 0.2, 0.3].forEach((v, b) => expect(tb.t[b]).toBeCloseTo(v, 14));
    expect([...tb.binOf]).toEqual([-1, 1, -1, 0, -1]);
    expect(tb.rest).toBe(2);
    // At τ = 2 the top-k keeps its mass m and the shape of softmax(lp / 2).
    const t2 = teacherBins(teacher('uniform'), 0, 5, 2);
    const q = [Math.sqrt(0.5), Math.sqrt(0.2)];
    expect(t2.t[3]).toBeCloseTo((0.7 * q[0]!) / (q[0]! + q[1]!), 14);
    expect(t2.t[0]! + t2.t[1]! + t2.t[2]! + t2.t[3]! + t2.t[4]!).toBeCloseTo(1, 14);
  });

  it('tail-bucket compares the rest bin 1 − m with the student mass outside the top-k', () => {
    const zs = [0.1, 0.4, -0.3, 1.0, 0.0];
    const s = Array.from(logSoftmax64(zs), Math.exp);
    const teacher: TeacherRef = { kind: 'topk', k: 2, ids: [3, 1], logprobs: [Math.log(0.5), Math.log(0.2)], policy: 'tail-bucket' };
    const r = classifierLossRef(base(1, 5, zs, teacher, 'fkl'));
    const sRest = s[0]! + s[2]! + s[4]!;
    expect(r.losses[0]).toBeCloseTo(0.5 * Math.log(0.5 / s[3]!) + 0.2 * Math.log(0.2 / s[1]!) + 0.3 * Math.log(0.3 / sRest), 14);
  });

  it('a sparse teacher with k = V equals the dense teacher, every objective and policy, τ = 1 and 2', () => {
    const rng = new Rng(11);
    const [N, V] = [3, 9];
    const zs = rng.uniformArray(N * V, -3, 3);
    const zt = rng.uniformArray(N * V, -3, 3);
    const ids: number[] = [];
    const lps: number[] = [];
    for (let n = 0; n < N; n++) {
      const perm = [...Array(V).keys()].sort(() => rng.next() - 0.5); // any order
      const lsm = logSoftmax64(zt.subarray(n * V, (n + 1) * V));
      for (const id of perm) { ids.push(id); lps.push(lsm[id]!); }
    }
    for (const objective of KD_ONLY) {
      for (const temperature of [1, 2]) {
        const args = { ...base(N, V, zs, undefined, objective), temperature, labels: [1, 4, NO_LABEL], ceWeight: 0.5 };
        const dense = classifierLossRef({ ...args, teacher: { kind: 'dense', logits: zt } });
        for (const policy of POLICIES) {
          const sparse = classifierLossRef({ ...args, teacher: { kind: 'topk', k: V, ids, logprobs: lps, policy } });
          sparse.losses.forEach((v, i) => expect(v, `${objective} ${policy} τ=${temperature}`).toBeCloseTo(dense.losses[i]!, 12));
          sparse.dz.forEach((v, i) => expect(v, `${objective} ${policy} τ=${temperature}`).toBeCloseTo(dense.dz[i]!, 12));
        }
      }
    }
  });

  it('masked rows (w = 0) give 0 losses and 0 gradient without reading their inputs', () => {
    const r = classifierLossRef({
      ...base(2, 3, [1, 2, 3, NaN, NaN, NaN], { kind: 'dense', logits: [0, 0, 1, NaN, 0, 0] }, 'fkl'),
      weights: [1, 0], labels: [0, 99], ceWeight: 1,
    });
    expect([...r.losses.subarray(2)]).toEqual([0, 0]);
    expect([...r.dz.subarray(3)]).toEqual([0, 0, 0]);
    expect(r.losses.every(Number.isFinite) && r.dz.every(Number.isFinite)).toBe(true);
  });
});

describe('classifierLossRef configuration errors', () => {
  const topk = (policy: string, k = 1): TeacherRef => ({ kind: 'topk', k, ids: [0], logprobs: [-0.1], policy: policy as TopKPolicy });
  const run = (objective: string, teacher: TeacherRef | undefined, extra: Partial<ClassifierLossRefArgs> = {}) => () =>
    classifierLossRef({ ...base(1, 3, [0, 1, 2], teacher, objective as KdObjective), ...extra });

  it('rejects unknown objectives and policies, infinite divergences, bad β/λ and k > V', () => {
    expect(run('kl', undefined)).toThrow(/unknown objective 'kl'/);
    expect(run('fkl', topk('drop'))).toThrow(/unknown top-k policy 'drop'/);
    expect(run('rkl', topk('renormalize'))).toThrow(/'rkl' is infinite under top-k policy 'renormalize'/);
    expect(run('jsd', topk('renormalize'), { beta: 1 })).toThrow(/'jsd' is infinite under top-k policy 'renormalize'/);
    expect(run('skew_rkl', topk('renormalize'), { lambda: 0 })).toThrow(/'skew_rkl' is infinite/);
    expect(run('skew_rkl', topk('renormalize'), { lambda: 0.1 })).not.toThrow();
    expect(run('jsd', topk('uniform'), { beta: 1.5 })).toThrow(/beta in \[0, 1\]/);
    expect(run('skew_fkl', topk('uniform'), { lambda: 1 })).toThrow(/lambda in \[0, 1\)/);
    expect(run('fkl', topk('uniform', 4))).toThrow(/k = 4 is larger than the vocabulary V = 3/);
    expect(run('fkl', undefined)).toThrow(/'fkl' needs a teacher/);
    expect(run('none', undefined, { labels: [3] })).toThrow(/label 3 is not in \[0, V = 3\)/);
  });

  it('validateTopK rejects duplicate and out-of-range ids, skipping masked rows', () => {
    expect(() => validateTopK([0, 2, 1, 1, 2, 0], 2, 3, 4)).not.toThrow();
    expect(() => validateTopK([0, 2, 1, 1, 2, 1], 2, 3, 4)).toThrow(/row 1: id 1 appears twice \(slots 0 and 2\)/);
    expect(() => validateTopK([0, 4, 1], 1, 3, 4)).toThrow(/row 0, slot 1: id 4 is not in \[0, V = 4\)/);
    expect(() => validateTopK([0, 2, 1, 1, 1, 1], 2, 3, 4, [1, 0])).not.toThrow();
    expect(() => validateTopK([0, 1], 1, 2, 1)).toThrow(/k = 2 is larger than the vocabulary V = 1/);
  });
});

describe('classifierLossRef gradients vs central finite differences', () => {
  const [N, V, k] = [3, 7, 3];
  const teachers = ['dense', ...POLICIES] as const;
  const cases = KD_ONLY.flatMap((objective) => teachers.flatMap((teacher) => [1, 2].map((temperature) => [objective, teacher, temperature] as const)))
    .filter(([o, t]) => !(o === 'rkl' && t === 'renormalize'));

  it.each(cases)('%s, %s teacher, τ = %d', (objective, teacherKind, temperature) => {
    const rng = new Rng(5 + temperature);
    const z = Float64Array.from(rng.uniformArray(N * V, -2, 2));
    const zt = Float64Array.from(rng.uniformArray(N * V, -2, 2));
    const ids = [0, 3, 5, 6, 1, 2, 4, 0, 6];
    const logprobs = ids.map((id, i) => logSoftmax64(zt.subarray(Math.floor(i / k) * V, Math.floor(i / k) * V + V))[id]!);
    const teacher: TeacherRef = teacherKind === 'dense' ? { kind: 'dense', logits: zt } : { kind: 'topk', k, ids, logprobs, policy: teacherKind };
    const args: ClassifierLossRefArgs = {
      ...base(N, V, z, teacher, objective), temperature, labels: [2, NO_LABEL, 6], weights: [0.7, 1.3, 1.0],
      kdWeight: 0.8, ceWeight: 0.4, lossScale: 0.5,
    };
    const { dz } = classifierLossRef(args);
    const total = (zz: Float64Array) => {
      const l = classifierLossRef({ ...args, logits: zz }).losses;
      let sum = 0;
      for (let n = 0; n < N; n++) sum += args.lossScale * (args.kdWeight * l[2 * n]! + args.ceWeight * l[2 * n + 1]!);
      return sum;
    };
    const eps = 1e-6;
    for (let i = 0; i < N * V; i++) {
      const zp = z.slice();
      const zm = z.slice();
      zp[i]! += eps;
      zm[i]! -= eps;
      const fd = (total(zp) - total(zm)) / (2 * eps);
      expect(Math.abs(fd - dz[i]!), `dz[${i}] = ${dz[i]} vs fd ${fd}`).toBeLessThan(1e-8 + 1e-6 * Math.abs(dz[i]!));
    }
  });
});

describe('classifierLossRef with vocabulary padding (realVocab < V)', () => {
  it('is the loss of the first realVocab columns whatever the padding holds, with dz = 0 on the padding', () => {
    const [N, V, Vr, k] = [3, 9, 7, 3];
    const rng = new Rng(11);
    const z = Float64Array.from(rng.uniformArray(N * V, -2, 2));
    const zt = Float64Array.from(rng.uniformArray(N * V, -2, 2));
    const cut = (x: Float64Array) => Float64Array.from({ length: N * Vr }, (_, i) => x[Math.floor(i / Vr) * V + (i % Vr)]!);
    const ids = [0, 3, 5, 6, 1, 2, 4, 0, 6];
    const logprobs = ids.map((id, i) => logSoftmax64(cut(zt).subarray(Math.floor(i / k) * Vr, Math.floor(i / k) * Vr + Vr))[id]!);
    const teachers = (dense: Float64Array): TeacherRef[] => [{ kind: 'dense', logits: dense }, ...POLICIES.map((policy) => ({ kind: 'topk' as const, k, ids, logprobs, policy }))];
    for (const [t, tc] of teachers(zt).map((t, i) => [t, teachers(cut(zt))[i]!] as const)) {
      for (const objective of ['fkl', 'jsd', 'tvd'] as KdObjective[]) {
        const common = { N, labels: [2, NO_LABEL, 6], weights: [0.7, 1.3, 1.0], objective, temperature: 2, kdWeight: 0.8, ceWeight: 0.4, lossScale: 0.5, beta: 0.3 };
        const garbage = z.slice();
        for (let n = 0; n < N; n++) garbage.fill(n === 1 ? Number.NaN : 1e4, n * V + Vr, (n + 1) * V);
        const padded = classifierLossRef({ ...common, V, realVocab: Vr, logits: garbage, teacher: t.kind === 'dense' ? { kind: 'dense', logits: zt } : t });
        const plain = classifierLossRef({ ...common, V: Vr, logits: cut(z), teacher: tc });
        expect([...padded.losses], `${objective} ${t.kind}`).toEqual([...plain.losses]);
        for (let n = 0; n < N; n++) {
          expect([...padded.dz.subarray(n * V, n * V + Vr)]).toEqual([...plain.dz.subarray(n * Vr, (n + 1) * Vr)]);
          expect([...padded.dz.subarray(n * V + Vr, (n + 1) * V)]).toEqual([0, 0]);
        }
      }
    }
    expect(() => classifierLossRef({ N: 1, V: 3, realVocab: 4, logits: [0, 0, 0], weights: [1], objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1, labels: [0] }))
      .toThrow(/realVocab 4 must be an integer in \[1, V = 3\]/);
    // A label in the padding is as wrong as one past V.
    expect(() => classifierLossRef({ N: 1, V: 3, realVocab: 2, logits: [0, 0, 0], weights: [1], objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1, labels: [2] }))
      .toThrow(/label 2 is not in \[0, V = 2\)/);
  });
});
