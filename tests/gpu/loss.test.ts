// The fused classifier loss (KD + CE, gradient in place) against the CPU reference at odd shapes, on Dawn in Node:
// the registry's checks, every objective × teacher policy × τ, sparse k = V vs dense, chunking, errors, update().
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { KD_OBJECTIVES, NO_LABEL, TOPK_MAX, type KdObjective, type TopKPolicy } from '../../src/kernels/loss/loss.config.ts';
import {
  DZ_TOLERANCE, LOSS_TOLERANCE, checkClassifierLoss, createStorageU32, describeLossConfig, lossChecks, makeLossInputs,
  runClassifierLoss, type LossCheckConfig,
} from '../../src/kernels/loss/loss.check.ts';
import { planClassifierLoss, type ClassifierLossArgs } from '../../src/kernels/loss/loss.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('classifier loss checks', () => {
  it.each(lossChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
});

describe('classifier loss: every objective × teacher × τ', () => {
  const teachers: { teacher: 'dense' | 'topk'; policy?: TopKPolicy }[] = [
    { teacher: 'dense' }, { teacher: 'topk', policy: 'renormalize' }, { teacher: 'topk', policy: 'uniform' }, { teacher: 'topk', policy: 'tail-bucket' },
  ];
  const shapes = [[17, 65, 5], [3, 130, 1], [1, 7, 5], [33, 33, 7]] as const;
  const configs: LossCheckConfig[] = [];
  KD_OBJECTIVES.filter((o) => o !== 'none').forEach((objective, oi) => {
    teachers.forEach((t, ti) => {
      if (objective === 'rkl' && t.policy === 'renormalize') return;
      const [N, V, k] = shapes[(oi + ti) % shapes.length]!;
      for (const temperature of [1, 2]) {
        configs.push({ N, V, objective, ...t, k: t.teacher === 'topk' ? k : undefined, temperature, beta: 0.3, lambda: 0.1 });
      }
    });
  });
  // The degenerate ends: jsd at β = 0 / 1 and skew KL at λ = 0 (evaluated as fkl / rkl).
  configs.push(
    { N: 3, V: 65, objective: 'jsd', beta: 0, teacher: 'dense', temperature: 2 },
    { N: 3, V: 65, objective: 'jsd', beta: 1, teacher: 'topk', k: 5, policy: 'uniform', temperature: 1 },
    { N: 3, V: 65, objective: 'skew_fkl', lambda: 0, teacher: 'topk', k: 5, policy: 'tail-bucket', temperature: 2 },
    { N: 3, V: 65, objective: 'skew_rkl', lambda: 0, teacher: 'dense', temperature: 1 },
  );

  it.each(configs.map((c) => [describeLossConfig(c), c] as const))('%s', async (_, c) => {
    expect(failures(await checkClassifierLoss(gpu().device, c, 7))).toBe('');
  });
});

describe('classifier loss kernel', () => {
  it('a sparse teacher with k = V matches the dense teacher (every policy, τ = 1 and 2)', async () => {
    const { device } = gpu();
    const [N, V] = [17, 65];
    for (const objective of ['fkl', 'jsd', 'tvd', 'skew_rkl'] as KdObjective[]) {
      for (const temperature of [1, 2]) {
        const common = { N, V, objective, temperature, beta: 0.3, lambda: 0.1 };
        // The same inputs for both: makeLossInputs gives the teacher's top-k = all V tokens as log_softmax(zt).
        const x = makeLossInputs({ ...common, teacher: 'topk', k: V, policy: 'uniform' }, 5);
        const dense = await runClassifierLoss(device, { ...common, teacher: 'dense' }, x);
        for (const policy of ['renormalize', 'uniform', 'tail-bucket'] as TopKPolicy[]) {
          const sparse = await runClassifierLoss(device, { ...common, teacher: 'topk', k: V, policy }, x);
          const what = `${objective} ${policy} τ=${temperature}`;
          expect(failures([{ name: `${what} losses`, ...compareArrays(sparse.losses, dense.losses, LOSS_TOLERANCE) }])).toBe('');
          expect(failures([{ name: `${what} dz`, ...compareArrays(sparse.dz, dense.dz, DZ_TOLERANCE) }])).toBe('');
        }
      }
    }
  });

  it('splits rows into chunks (small maxBindingBytes) with results bit-identical to one dispatch', async () => {
    const { device } = gpu();
    for (const c of [
      { N: 130, V: 7, objective: 'jsd', beta: 0.3, teacher: 'dense', temperature: 2 },
      { N: 130, V: 7, objective: 'tvd', teacher: 'topk', k: 5, policy: 'tail-bucket', temperature: 1 },
    ] as LossCheckConfig[]) {
      const x = makeLossInputs(c, 9);
      const one = await runClassifierLoss(device, c, x);
      const chunked = await runClassifierLoss(device, { ...c, maxBindingBytes: 64 * 7 * 4 }, x);
      expect([one.dispatches, chunked.dispatches]).toEqual([1, 3]); // 64 + 64 + 2 rows
      expect(new Uint32Array(chunked.dz.buffer)).toEqual(new Uint32Array(one.dz.buffer));
      expect(new Uint32Array(chunked.losses.buffer)).toEqual(new Uint32Array(one.losses.buffer));
      // And deterministic: the same run twice gives the same bits.
      const again = await runClassifierLoss(device, c, x);
      expect(new Uint32Array(again.dz.buffer)).toEqual(new Uint32Array(one.dz.buffer));
    }
  });

  it('stays finite and accurate for large logits (log-sum-exp, no exp of large numbers)', async () => {
    const { device } = gpu();
    for (const teacher of ['dense', 'topk'] as const) {
      const c: LossCheckConfig = { N: 3, V: 130, objective: 'rkl', teacher, k: teacher === 'topk' ? 5 : undefined, policy: 'uniform', temperature: 1 };
      const x = makeLossInputs(c, 4);
      for (const a of [x.logits, x.teacherLogits]) for (let i = 0; i < a.length; i++) a[i]! *= 40; // |z| up to ~300
      x.logprobs.forEach((_, i) => (x.logprobs[i] = Math.max(x.logprobs[i]!, -60))); // keep m > 0 in f32
      const got = await runClassifierLoss(device, c, x);
      expect(got.dz.every(Number.isFinite) && got.losses.every(Number.isFinite)).toBe(true);
    }
    expect(failures(await checkClassifierLoss(device, { N: 3, V: 130, objective: 'fkl', teacher: 'dense', temperature: 2 }, 4))).toBe('');
  });

  it('masks vocabulary padding: the same bits as the unpadded problem on the real columns, dz = 0 on the padding', async () => {
    const { device } = gpu();
    const [N, V, Vr] = [9, 70, 61];
    for (const t of [
      { objective: 'none', teacher: 'none', kdWeight: 0, ceWeight: 1 },
      { objective: 'fkl', teacher: 'dense' },
      { objective: 'skew_rkl', lambda: 0.1, teacher: 'topk', k: 4, policy: 'uniform' },
      { objective: 'jsd', beta: 0.3, teacher: 'topk', k: 4, policy: 'tail-bucket' },
      { objective: 'tvd', teacher: 'topk', k: 4, policy: 'renormalize' },
    ] as Omit<LossCheckConfig, 'N' | 'V' | 'temperature'>[]) {
      const padded: LossCheckConfig = { ...t, N, V, realVocab: Vr, temperature: 2 };
      const x = makeLossInputs(padded, 3); // NaN in every padding column
      const cut = (a: Float32Array) => Float32Array.from({ length: N * Vr }, (_, i) => a[Math.floor(i / Vr) * V + (i % Vr)]!);
      const plain = await runClassifierLoss(device, { ...t, N, V: Vr, temperature: 2 }, { ...x, logits: cut(x.logits), teacherLogits: cut(x.teacherLogits) });
      const got = await runClassifierLoss(device, padded, x);
      const what = describeLossConfig(padded);
      expect(new Uint32Array(got.losses.buffer), what).toEqual(new Uint32Array(plain.losses.buffer));
      expect(new Uint32Array(cut(got.dz).buffer), what).toEqual(new Uint32Array(plain.dz.buffer));
      for (let n = 0; n < N; n++) expect([...got.dz.subarray(n * V + Vr, (n + 1) * V)].every((v) => Object.is(v, 0)), what).toBe(true);
    }
    const buf = (floats: number) => createStorage(device, floats);
    expect(() => planClassifierLoss(device, {
      N: 1, V: 4, realVocab: 5, logits: buf(4), labels: buf(1), weights: buf(1), losses: buf(2), objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1,
    })).toThrow(/realVocab 5 is larger than the row width V = 4/);
    expect(() => planClassifierLoss(device, {
      N: 1, V: 8, realVocab: 4, logits: buf(8), labels: buf(1), weights: buf(1), losses: buf(2), objective: 'fkl', temperature: 1, kdWeight: 1, ceWeight: 1, lossScale: 1,
      teacher: { kind: 'topk', k: 5, ids: buf(5), logprobs: buf(5), policy: 'uniform' },
    })).toThrow(/k = 5 is larger than the vocabulary V = 4/);
  });

  it('update() rewrites the per-step scalars of every chunk', async () => {
    const { device } = gpu();
    const [N, V] = [70, 7];
    const c: LossCheckConfig = { N, V, objective: 'fkl', teacher: 'dense', temperature: 1 };
    const x = makeLossInputs(c, 2);
    const logits = createStorage(device, x.logits);
    const losses = createStorage(device, N * 2);
    const plan = planClassifierLoss(device, {
      N, V, logits, losses, labels: createStorageU32(device, x.labels), weights: createStorage(device, x.weights),
      teacher: { kind: 'dense', logits: createStorage(device, x.teacherLogits) },
      objective: 'fkl', temperature: 1, kdWeight: 0.7, ceWeight: 0.3, lossScale: 1, maxBindingBytes: 64 * V * 4,
    });
    expect(plan.dispatches.length).toBe(2);
    submitDispatches(device, plan.dispatches);
    const dz1 = await readF32(device, logits, N * V);
    device.queue.writeBuffer(logits, 0, x.logits.buffer, x.logits.byteOffset, x.logits.byteLength);
    plan.update({ lossScale: 0.25, kdWeight: 1.4, ceWeight: 0.6 });
    submitDispatches(device, plan.dispatches);
    const dz2 = await readF32(device, logits, N * V);
    dz1.forEach((v, i) => expect(dz2[i]).toBeCloseTo(0.5 * v, 7));
    expect(dz1.some((v) => v !== 0)).toBe(true);
  });

  it('rejects bad configurations and short buffers with clear errors', () => {
    const { device } = gpu();
    const [N, V] = [3, 7];
    const buf = (floats: number) => createStorage(device, floats);
    const ok: ClassifierLossArgs = {
      N, V, logits: buf(N * V), labels: buf(N), weights: buf(N), losses: buf(2 * N),
      teacher: { kind: 'topk', k: 2, ids: buf(2 * N), logprobs: buf(2 * N), policy: 'uniform' },
      objective: 'fkl', temperature: 1, kdWeight: 1, ceWeight: 1, lossScale: 1,
    };
    const topk = (policy: string, k = 2) => ({ kind: 'topk', k, ids: buf(k * N), logprobs: buf(k * N), policy: policy as TopKPolicy }) as const;
    const plan = (over: Partial<ClassifierLossArgs>) => () => planClassifierLoss(device, { ...ok, ...over });
    expect(plan({})).not.toThrow();
    expect(plan({ objective: 'kl' as KdObjective })).toThrow(/classifier_loss N=3 V=7: unknown objective 'kl'/);
    expect(plan({ teacher: topk('drop') })).toThrow(/unknown top-k policy 'drop'/);
    expect(plan({ objective: 'rkl', teacher: topk('renormalize') })).toThrow(/'rkl' is infinite under top-k policy 'renormalize'/);
    expect(plan({ teacher: topk('uniform', 8) })).toThrow(/k = 8 is larger than the vocabulary V = 7/);
    expect(plan({ N: 2000, V: 2000, teacher: topk('uniform', TOPK_MAX + 1) })).toThrow(/over the kernel's maximum of 1024/);
    expect(plan({ logits: buf(N * V - 1) })).toThrow(/classifier_loss N=3 V=7: logits has 80 bytes, needs 84/);
    expect(plan({ losses: buf(N) })).toThrow(/losses has 16 bytes, needs 24/);
    expect(plan({ teacher: { ...topk('uniform'), ids: buf(N) } })).toThrow(/top-k ids has 16 bytes, needs 24/);
    expect(plan({ teacher: { kind: 'dense', logits: buf(V) } })).toThrow(/teacher logits has 32 bytes, needs 84/);
    expect(plan({ labels: undefined })).toThrow(/ceWeight is 1 but no labels were given/);
    expect(plan({ teacher: undefined })).toThrow(/'fkl' needs a teacher/);
    expect(plan({ temperature: 0 })).toThrow(/temperature must be > 0/);
    expect(plan({ N: 0 })).toThrow(/N must be a positive integer/);
    const big = { N: 65, logits: buf(65 * V), labels: buf(65), weights: buf(65), losses: buf(130), teacher: { kind: 'dense', logits: buf(65 * V) } } as const;
    expect(plan({ ...big, maxBindingBytes: 64 * V * 4 })).not.toThrow();
    expect(plan({ ...big, maxBindingBytes: 64 * V * 4 - 4 })).toThrow(/a chunk of 64 rows needs 1792 bytes in one binding, over the limit of 1788/);
    expect(plan({ logits: { buffer: buf(N * V + 64), offset: 128 } })).toThrow(/logits offset 128 is not a multiple of 256/);
    expect(plan({ objective: 'none', teacher: undefined, kdWeight: 0 })).not.toThrow();
  });

  it('writes dz = 0 and zero losses on masked rows, and leaves memory past the last row untouched', async () => {
    const { device } = gpu();
    const [N, V] = [3, 7];
    const c: LossCheckConfig = { N, V, objective: 'tvd', teacher: 'topk', k: 2, policy: 'renormalize', temperature: 1 };
    const x = makeLossInputs(c, 1);
    x.labels[0] = NO_LABEL;
    const sentinel = new Float32Array(N * V + 64).fill(-7);
    sentinel.set(x.logits);
    const logits = createStorage(device, sentinel);
    const losses = createStorage(device, new Float32Array(2 * N + 8).fill(-7));
    submitDispatches(device, planClassifierLoss(device, {
      N, V, logits, losses, labels: createStorageU32(device, x.labels), weights: createStorage(device, x.weights),
      teacher: { kind: 'topk', k: 2, ids: createStorageU32(device, x.ids), logprobs: createStorage(device, x.logprobs), policy: 'renormalize' },
      objective: 'tvd', temperature: 1, kdWeight: 1, ceWeight: 1, lossScale: 1,
    }).dispatches);
    const dz = await readF32(device, logits, sentinel.length);
    const l = await readF32(device, losses, 2 * N + 8);
    expect([...dz.subarray(V, 2 * V)]).toEqual(new Array(V).fill(0)); // row 1 is masked (NaN logits)
    expect([l[1], l[2], l[3]]).toEqual([0, 0, 0]); // row 0 has no label, row 1 is masked
    expect([...dz.subarray(N * V)].every((v) => v === -7)).toBe(true);
    expect([...l.subarray(2 * N)].every((v) => v === -7)).toBe(true);
  });
});
