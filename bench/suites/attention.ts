// Attention benchmark: causal GQA flash attention forward + backward (the PyTorch baseline is eager math
// attention, scores materialised, forward + backward). Checked against the CPU reference on batch 0.
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { attentionForwardFlops, planAttentionBackward, planAttentionForward } from '../../src/kernels/attention/attention.ts';
import { attentionBackwardRef, attentionForwardRef } from '../../src/kernels/attention/attention.ref.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { timeDispatches } from '../../src/gpu/timing.ts';
import { parseDims, withBaseline, type BenchRow, type Suite } from './common.ts';

export const attentionSuite: Suite = {
  name: 'attention',
  // B x T x H x Hkv x D. GPU: the 17M preset's layer (B = 32, T = 256, 6 heads of 64) and a longer GQA context.
  presets: { local: '1x64x2x1x32,2x33x4x2x16', gpu: '32x256x6x6x64,8x1024x12x4x64' },
  async run({ device, shapes, iters, baseline, log }) {
    const rows: BenchRow[] = [];
    for (const shape of shapes) {
      const [B, T, H, Hkv, D] = parseDims(shape, 5, 'attention BxTxHxHkvxD') as [number, number, number, number, number];
      const dims = { B, T, H, Hkv, D };
      const rng = new Rng(B * T + H * D);
      const nq = B * T * H * D, nkv = B * T * Hkv * D;
      const host = { q: rng.uniformArray(nq), k: rng.uniformArray(nkv), v: rng.uniformArray(nkv), dout: rng.uniformArray(nq) };
      const q = createStorage(device, host.q), k = createStorage(device, host.k), v = createStorage(device, host.v);
      const dout = createStorage(device, host.dout);
      const o = createStorage(device, nq), lse = createStorage(device, B * H * T), delta = createStorage(device, B * H * T);
      const dq = createStorage(device, nq), dk = createStorage(device, nkv), dv = createStorage(device, nkv);
      const step = dispatchesOf(planAttentionForward(device, { ...dims, q, k, v, o, lse }), planAttentionBackward(device, { ...dims, q, k, v, o, lse, dout, delta, dq, dk, dv }));
      submitDispatches(device, step);
      // Check batch 0 (the reference is O(T²) per head on the CPU).
      const b0 = { ...dims, B: 1 };
      const slice = (a: Float32Array, per: number) => a.subarray(0, per);
      const fw = attentionForwardRef(slice(host.q, T * H * D), slice(host.k, T * Hkv * D), slice(host.v, T * Hkv * D), b0);
      const bw = attentionBackwardRef(slice(host.q, T * H * D), slice(host.k, T * Hkv * D), slice(host.v, T * Hkv * D), slice(host.dout, T * H * D), b0);
      const tol = { atol: 2e-5, rtol: 1e-4 };
      const cmps = [
        ['o', await readF32(device, o, T * H * D), fw.o], ['dq', await readF32(device, dq, T * H * D), bw.dq],
        ['dk', await readF32(device, dk, T * Hkv * D), bw.dk], ['dv', await readF32(device, dv, T * Hkv * D), bw.dv],
      ].map(([name, got, ref]) => ({ name, ...compareArrays(got as Float32Array, ref as Float64Array, tol) }));
      const bad = cmps.filter((c) => !c.ok);
      const t = await timeDispatches(device, step, iters);
      const row = withBaseline({
        suite: 'attention', kernel: 'attention_fwd_bwd', variant: 'flash', shape, ms: t.ms, timing: t.method,
        // Forward 2 matmuls + backward 4, over the causal half of T² (the same count the PyTorch side reports).
        rate: (3 * attentionForwardFlops(dims)) / (t.ms * 1e-3) / 1e12, unit: 'TFLOP/s',
        checkOk: bad.length === 0, checkDetail: bad.length ? bad.map((c) => `${c.name}: ${describeComparison(c)}`).join('; ') : 'batch 0 matches the CPU reference',
      }, baseline);
      rows.push(row);
      log(row);
      for (const buf of [q, k, v, dout, o, lse, delta, dq, dk, dv]) buf.destroy();
    }
    return rows;
  },
};
