// Causal grouped-query flash attention (forward and backward) against the CPU reference on Dawn in Node,
// plus causality, T = 1, determinism, buffer-range bindings and input validation.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { attentionChecks, attentionInputs, runAttention } from '../../src/kernels/attention/attention.check.ts';
import { attentionBlocks, planAttentionBackward, planAttentionForward } from '../../src/kernels/attention/attention.ts';
import { attentionBackwardRef, attentionForwardRef } from '../../src/kernels/attention/attention.ref.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('attention checks', () => {
  it.each(attentionChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });
});

describe('attention', () => {
  it('with T = 1 returns o = v of the group kv head and lse = scale·q·k', async () => {
    const dims = { B: 2, T: 1, H: 4, Hkv: 2, D: 32 };
    const x = attentionInputs(dims, 5);
    const got = await runAttention(gpu().device, dims, x);
    const { B, H, Hkv, D } = dims;
    const want = new Float32Array(B * H * D);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const row = b * Hkv + Math.floor(h / (H / Hkv)); // the group's kv head
        want.set(x.v.subarray(row * D, (row + 1) * D), (b * H + h) * D);
      }
    }
    expect([...got.o]).toEqual([...want]);
    expect(failures([{ name: 'lse', ...compareArrays(got.lse, attentionForwardRef(x.q, x.k, x.v, dims).lse, { atol: 1e-6, rtol: 1e-6 }) }])).toBe('');
  });

  it('is causal: o, lse and dq of rows ≤ t do not depend on keys and values after t', async () => {
    const dims = { B: 1, T: 33, H: 2, Hkv: 1, D: 16 };
    const { T, H, Hkv, D } = dims;
    const t0 = 12;
    const x = attentionInputs(dims, 9);
    const a = await runAttention(gpu().device, dims, x);
    const k2 = x.k.slice();
    const v2 = x.v.slice();
    for (let i = (t0 + 1) * Hkv * D; i < T * Hkv * D; i++) { k2[i] = 3 - k2[i]!; v2[i] = -5 * v2[i]!; }
    const b = await runAttention(gpu().device, dims, { ...x, k: k2, v: v2 });
    const rows = (t0 + 1) * H * D;
    expect([...b.o.subarray(0, rows)]).toEqual([...a.o.subarray(0, rows)]);
    expect([...b.dq.subarray(0, rows)]).toEqual([...a.dq.subarray(0, rows)]);
    for (let h = 0; h < H; h++) expect([...b.lse.subarray(h * T, h * T + t0 + 1)]).toEqual([...a.lse.subarray(h * T, h * T + t0 + 1)]);
    // ...while the next row does change.
    expect(b.o.subarray(rows, rows + D)).not.toEqual(a.o.subarray(rows, rows + D));
  });

  it('is deterministic: two runs give bit-identical outputs', async () => {
    const dims = { B: 1, T: 40, H: 6, Hkv: 2, D: 8 };
    const x = attentionInputs(dims, 11);
    const a = await runAttention(gpu().device, dims, x);
    const b = await runAttention(gpu().device, dims, x);
    for (const key of ['o', 'lse', 'dq', 'dk', 'dv'] as const) expect([...b[key]]).toEqual([...a[key]]);
  });

  it('runs forward and backward on ranges of one slab at 256-byte offsets, writing nothing outside them', async () => {
    const { device } = gpu();
    const dims = { B: 1, T: 9, H: 2, Hkv: 1, D: 8 };
    const { B, T, H, Hkv, D } = dims;
    const x = attentionInputs(dims, 3);
    const sizes = { q: B * T * H * D, k: B * T * Hkv * D, v: B * T * Hkv * D, dout: B * T * H * D, o: B * T * H * D,
      lse: B * H * T, delta: B * H * T, dq: B * T * H * D, dk: B * T * Hkv * D, dv: B * T * Hkv * D };
    const names = Object.keys(sizes) as (keyof typeof sizes)[];
    const slot = 768; // bytes per tensor (≥ 144 floats, a multiple of 256)
    const slab = new Float32Array((names.length * slot) / 4).fill(-7);
    const base = (name: keyof typeof sizes) => (names.indexOf(name) * slot) / 4;
    for (const name of ['q', 'k', 'v', 'dout'] as const) slab.set(x[name], base(name));
    const buf = createStorage(device, slab, 'attn slab');
    const r = Object.fromEntries(names.map((name) => [name, { buffer: buf, offset: base(name) * 4, size: sizes[name] * 4 }])) as
      Record<keyof typeof sizes, { buffer: GPUBuffer; offset: number; size: number }>;
    await withGpuErrors(device, 'attention slab', () =>
      submitDispatches(device, dispatchesOf(planAttentionForward(device, { ...dims, ...r }), planAttentionBackward(device, { ...dims, ...r }))));
    const out = await readF32(device, buf, slab.length);
    buf.destroy();
    const fwd = attentionForwardRef(x.q, x.k, x.v, dims);
    const bwd = attentionBackwardRef(x.q, x.k, x.v, x.dout, dims);
    const got = (name: keyof typeof sizes) => out.subarray(base(name), base(name) + sizes[name]);
    const tol = { atol: 2e-6, rtol: 2e-5 };
    expect(failures([
      { name: 'o', ...compareArrays(got('o'), fwd.o, tol) },
      { name: 'lse', ...compareArrays(got('lse'), fwd.lse, tol) },
      { name: 'dq', ...compareArrays(got('dq'), bwd.dq, tol) },
      { name: 'dk', ...compareArrays(got('dk'), bwd.dk, tol) },
      { name: 'dv', ...compareArrays(got('dv'), bwd.dv, tol) },
    ])).toBe('');
    expect([...got('q')]).toEqual([...x.q]); // inputs untouched
    for (const name of names) { // the gap after every tensor still holds the sentinel
      expect([...out.subarray(base(name) + sizes[name], base(name) + slot / 4)].every((v) => v === -7), name).toBe(true);
    }
  });

  it('picks block sizes that fit 16 KiB of workgroup memory for every head dim', () => {
    expect(attentionBlocks('forward', 16)).toEqual({ BR: 16, BC: 16 });
    expect(attentionBlocks('forward', 128)).toEqual({ BR: 8, BC: 8 });
    expect(attentionBlocks('dq', 64)).toEqual({ BR: 16, BC: 8 });
    expect(attentionBlocks('dkdv', 128)).toEqual({ BR: 8, BC: 4 });
  });

  it('rejects unsupported head dims, bad groupings and short buffers with a clear error', () => {
    const { device } = gpu();
    const big = createStorage(device, 4096);
    const small = createStorage(device, 4);
    const fwd = { q: big, k: big, v: big, o: big, lse: big };
    expect(() => planAttentionForward(device, { ...fwd, B: 1, T: 3, H: 2, Hkv: 1, D: 24 })).toThrow(/attention_forward .*head dim D = 24 is not supported/);
    expect(() => planAttentionForward(device, { ...fwd, B: 1, T: 3, H: 3, Hkv: 2, D: 8 })).toThrow(/H = 3 is not a multiple of Hkv = 2/);
    expect(() => planAttentionForward(device, { ...fwd, B: 1, T: 0, H: 1, Hkv: 1, D: 8 })).toThrow(/T must be a positive integer/);
    expect(() => planAttentionForward(device, { ...fwd, lse: small, B: 1, T: 7, H: 1, Hkv: 1, D: 8 })).toThrow(/lse has 16 bytes, needs 28/);
    expect(() => planAttentionBackward(device, { ...fwd, dout: big, delta: big, dq: big, dk: small, dv: big, B: 1, T: 3, H: 2, Hkv: 1, D: 8 }))
      .toThrow(/attention_backward B=1 T=3 H=2 Hkv=1 D=8: dk has 16 bytes, needs 96/);
    big.destroy();
    small.destroy();
  });
});
