// The optimizer kernels (global grad norm + clip + non-finite flag, AdamW over slab regions, grad zeroing) and
// the non-blocking StatsReader, against the CPU reference on Dawn in Node.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import {
  checkOptimizer, optimChecks, optimInputs, REGIONS_1000, REGIONS_4099, runOptimizerGpu, runOptimizerRef, type OptimRunConfig,
} from '../../src/kernels/optim/optim.check.ts';
import { gradNormPartialCount, planAdamW, planGradNorm, planZero, STATS_FLOATS } from '../../src/kernels/optim/optim.ts';
import { StatsReader } from '../../src/kernels/optim/stats-reader.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

describe('optim checks', () => {
  it.each(optimChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });
});

describe('global gradient norm', () => {
  it('matches the f64 norm and is bit-identical across runs and across chunkings (P=4099)', async () => {
    const { device } = gpu();
    const cfg: OptimRunConfig = { P: 4099, regions: REGIONS_4099, steps: 1, maxNorm: 3, seed: 5 };
    const a = await runOptimizerGpu(device, cfg);
    const b = await runOptimizerGpu(device, cfg);
    const c = await runOptimizerGpu(device, { ...cfg, maxBindingBytes: 4096 }); // 5 chunks of ≤ 1024 floats
    const ref = runOptimizerRef(cfg).stats;
    expect(Math.abs(a.stats[0]! - ref.norm) / ref.norm).toBeLessThan(1e-6);
    expect(a.stats[1]).toBeCloseTo(3 / (ref.norm + 1e-6), 6);
    expect(a.stats[2]).toBe(0);
    expect(bits(b.stats)).toEqual(bits(a.stats));
    expect(bits(c.stats)).toEqual(bits(a.stats));
  });

  it('flags NaN, +Inf, -Inf and f32 overflow of the sum; clipScale is then 0 (clipping) or 1 (no clipping)', async () => {
    const { device } = gpu();
    const P = 2100;
    const grad = createStorage(device, P);
    const partials = createStorage(device, gradNormPartialCount(P));
    const stats = createStorage(device, STATS_FLOATS);
    const clip = planGradNorm(device, { grad, P, partials, stats, maxNorm: 1, maxBindingBytes: 4096 });
    const cases: [string, number, number][] = [['NaN', 0, NaN], ['+Inf', 2099, Infinity], ['-Inf', 1500, -Infinity], ['1e20', 1024, 1e20]];
    for (const [name, index, value] of cases) {
      const g = new Float32Array(P).fill(0.01);
      g[index] = value;
      device.queue.writeBuffer(grad, 0, g);
      clip.update({ maxNorm: 1 });
      submitDispatches(device, clip.dispatches);
      expect([...(await readF32(device, stats, 4))], name).toEqual([Infinity, 0, 1, Infinity]);
      clip.update({ maxNorm: 0 });
      submitDispatches(device, clip.dispatches);
      expect([...(await readF32(device, stats, 4))], name).toEqual([Infinity, 1, 1, Infinity]);
    }
    device.queue.writeBuffer(grad, 0, new Float32Array(P).fill(0.5)); // finite again: flag cleared
    submitDispatches(device, clip.dispatches);
    const s = await readF32(device, stats, 4);
    expect(s[0]).toBeCloseTo(0.5 * Math.sqrt(P), 4);
    expect([s[1], s[2]]).toEqual([1, 0]);
  });
});

describe('adamw', () => {
  it('skips the whole step on a non-finite gradient: p, m, v bit-identical, and the next step proceeds', async () => {
    const { device } = gpu();
    for (const value of [NaN, Infinity]) {
      const cfg: OptimRunConfig = {
        P: 1000, regions: REGIONS_1000, steps: 3, maxNorm: 1, seed: 9, maxBindingBytes: 4096, snapshots: true,
        poke: [{ step: 2, index: 333, value }],
      };
      const { snaps } = await runOptimizerGpu(device, cfg);
      const [s1, s2, s3] = snaps as [typeof snaps[0], typeof snaps[0], typeof snaps[0]];
      expect(s1.stats[2]).toBe(0);
      expect(s2.stats[2]).toBe(1);
      expect(bits(s2.p)).toEqual(bits(s1.p));
      expect(bits(s2.m)).toEqual(bits(s1.m));
      expect(bits(s2.v)).toEqual(bits(s1.v));
      expect(s3.stats[2]).toBe(0);
      expect(bits(s3.p)).not.toEqual(bits(s1.p));
      // the reference skips step 2 the same way and then takes step 3 with t = 3
      expect(failures(await checkOptimizer(device, { ...cfg, snapshots: false }))).toBe('');
    }
  });

  it('gives bit-identical p, m, v chunked (maxBindingBytes 256 and 4096) and unchunked', async () => {
    const { device } = gpu();
    const cfg: OptimRunConfig = { P: 4099, regions: REGIONS_4099, steps: 2, maxNorm: 2, seed: 3 };
    const whole = await runOptimizerGpu(device, cfg);
    for (const maxBindingBytes of [4096, 8192]) {
      const chunked = await runOptimizerGpu(device, { ...cfg, maxBindingBytes });
      for (const k of ['p', 'm', 'v', 'stats'] as const) expect(bits(chunked[k]), `${k} @ ${maxBindingBytes}`).toEqual(bits(whole[k]));
    }
    // AdamW alone at the smallest chunk (64 floats): the norm needs ≥ 4096 bytes, so plan it unchunked here
    const P = 1000;
    const { p0, grads } = optimInputs({ ...cfg, P, steps: 1 });
    const mk = () => ({
      params: createStorage(device, p0), grads: createStorage(device, grads[0]!), m: createStorage(device, P), v: createStorage(device, P),
      stats: createStorage(device, STATS_FLOATS), partials: createStorage(device, gradNormPartialCount(P)),
    });
    const [x, y] = [mk(), mk()];
    const plans = [planAdamW(device, { ...x, regions: REGIONS_1000, lr: 0.01, step: 1 }), planAdamW(device, { ...y, regions: REGIONS_1000, lr: 0.01, step: 1, maxBindingBytes: 256 })];
    expect(plans[1]!.dispatches.length).toBe(5 + 1 + 10);
    const norms = [x, y].map((b) => planGradNorm(device, { grad: b.grads, P, partials: b.partials, stats: b.stats, maxNorm: 1 }));
    submitDispatches(device, [...norms[0]!.dispatches, ...plans[0]!.dispatches, ...norms[1]!.dispatches, ...plans[1]!.dispatches]);
    expect(bits(await readF32(device, y.params, P))).toEqual(bits(await readF32(device, x.params, P)));
    expect(bits(await readF32(device, y.v, P))).toEqual(bits(await readF32(device, x.v, P)));
  });

  it('leaves the gaps between regions untouched and applies no decay where weightDecay is 0', async () => {
    const { device } = gpu();
    const cfg: OptimRunConfig = { P: 1000, regions: REGIONS_1000, steps: 2, maxNorm: 0, seed: 4 };
    const got = await runOptimizerGpu(device, cfg);
    const { p0 } = optimInputs(cfg);
    for (const i of [300, 319, 327, 383, 961, 999]) {
      expect(got.p[i]).toBe(p0[i]);
      expect([got.m[i], got.v[i]]).toEqual([0, 0]);
    }
    expect(got.p[0]).not.toBe(p0[0]);
  });

  it('merges adjacent regions with equal decay into one dispatch per chunk', () => {
    const { device } = gpu();
    const [params, grads, m, v, stats] = [4099, 4099, 4099, 4099, 4].map((n) => createStorage(device, n));
    const plan = planAdamW(device, { params: params!, grads: grads!, m: m!, v: v!, stats: stats!, regions: REGIONS_4099, lr: 0.01, step: 1 });
    expect(plan.regions).toEqual([
      { offset: 0, count: 2524, weightDecay: 0.01 },
      { offset: 2560, count: 33, weightDecay: 0 },
      { offset: 2624, count: 1475, weightDecay: 0.01 },
    ]);
    expect(plan.dispatches.length).toBe(3);
  });

  it('rejects bad regions, short buffers, bad hyper-parameters and too-small binding limits with clear errors', () => {
    const { device } = gpu();
    const [b, grads, m, v, stats] = [100, 100, 100, 100, 4].map((n) => createStorage(device, n)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
    const base = { params: b, grads, m, v, stats, lr: 0.01, step: 1 };
    const r = (offset: number, count: number, weightDecay = 0) => ({ offset, count, weightDecay });
    expect(() => planAdamW(device, { ...base, regions: [r(10, 5)] })).toThrow(/offset must be a multiple of 64 floats/);
    expect(() => planAdamW(device, { ...base, regions: [r(0, 70), r(64, 3)] })).toThrow(/region \[64, 67\) overlaps \[0, 70\)/);
    expect(() => planAdamW(device, { ...base, regions: [r(64, 100)] })).toThrow(/adamw \(regions end at float 164\): params has 400 bytes, needs 656/);
    expect(() => planAdamW(device, { ...base, regions: [] })).toThrow(/no regions/);
    expect(() => planAdamW(device, { ...base, regions: [r(0, 0)] })).toThrow(/count must be a positive integer, got 0/);
    expect(() => planAdamW(device, { ...base, regions: [r(0, 5)], step: 0 })).toThrow(/step must be a positive integer, got 0/);
    expect(() => planAdamW(device, { ...base, regions: [r(0, 5)], beta2: 1 })).toThrow(/beta2 must be in \[0, 1\)/);
    expect(() => planAdamW(device, { ...base, regions: [r(0, 5)], maxBindingBytes: 100 })).toThrow(/maxBindingBytes must be an integer ≥ 256/);
    const ok = planAdamW(device, { ...base, regions: [r(0, 5)] });
    expect(() => ok.update({ lr: NaN, step: 2 })).toThrow(/lr must be finite/);
    const partials = createStorage(device, 4);
    expect(() => planGradNorm(device, { grad: b, P: 200, partials, stats, maxNorm: 1 })).toThrow(/gradnorm P=200: grad has 400 bytes, needs 800/);
    expect(() => planGradNorm(device, { grad: b, P: 100, partials, stats, maxNorm: 1, maxBindingBytes: 2048 })).toThrow(/below one 4096-byte partial/);
    expect(() => planZero(device, { buffer: b, offset: 32, count: 4 })).toThrow(/zero \[32, 36\): offset must be a multiple of 64/);
  });
});

describe('planZero', () => {
  it('zeroes a gradient slab so the next backward can accumulate', async () => {
    const { device } = gpu();
    const P = 300;
    const g = createStorage(device, new Float32Array(P).fill(3));
    submitDispatches(device, planZero(device, { buffer: g, count: P }).dispatches);
    expect((await readF32(device, g, P)).every((x) => x === 0)).toBe(true);
  });
});

describe('StatsReader', () => {
  it('reports each step (flagged ones included) without awaiting the GPU inside the step loop', async () => {
    const { device } = gpu();
    const P = 200;
    const grad = createStorage(device, P);
    const partials = createStorage(device, gradNormPartialCount(P));
    const stats = createStorage(device, STATS_FLOATS);
    const norm = planGradNorm(device, { grad, P, partials, stats, maxNorm: 1 });
    const reader = new StatsReader(device, stats, 2);
    const seen: number[] = [];
    const flagged: number[] = [];
    for (let step = 1; step <= 5; step++) {
      const g = new Float32Array(P).fill(step * 0.01);
      if (step === 3) g[17] = NaN;
      device.queue.writeBuffer(grad, 0, g);
      submitDispatches(device, norm.dispatches);
      reader.capture(step); // 5 captures on a ring of 2: it grows rather than lose a step
      for (const st of reader.poll()) { seen.push(st.step); if (st.nonFinite) flagged.push(st.step); }
    }
    // the trainer's loop only yields to the event loop; the maps land on their own
    for (let i = 0; i < 500 && seen.length < 5; i++) {
      await new Promise((r) => setTimeout(r, 5));
      for (const st of reader.poll()) { seen.push(st.step); if (st.nonFinite) flagged.push(st.step); }
    }
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(flagged).toEqual([3]);
    expect(reader.pending).toBe(0);
    reader.capture(6);
    const last = await reader.drain();
    expect(last.map((s) => s.step)).toEqual([6]);
    expect(last[0]!.norm).toBeCloseTo(0.05 * Math.sqrt(P), 5);
    expect(last[0]!.nonFinite).toBe(false);
    reader.destroy();
  });
});
