// KV-cache decode attention (kv_append + attention_decode) against the CPU reference on Dawn in Node, plus a
// prefill-then-decode generation loop against the full causal attention reference, determinism, ranges of one
// slab buffer, and clear errors for bad shapes and positions past the cache.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { attentionForwardRef } from '../../src/kernels/attention/attention.ref.ts';
import { DECODE_TOLERANCE, decodeChecks, decodeInputs, runDecodeStep } from '../../src/kernels/attention/decode.check.ts';
import { planAttentionDecode, planKvAppend } from '../../src/kernels/attention/decode.ts';
import { attentionDecodeRef, kvAppendRef } from '../../src/kernels/attention/decode.ref.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('attention_decode checks', () => {
  it.each(decodeChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });
});

describe('attention_decode', () => {
  it('prefill (S = 13) then 8 decode steps (S = 1) reproduce the full causal attention of the sequence', async () => {
    const { device } = gpu();
    const [B, T, H, Hkv, D, Tmax, P] = [2, 21, 4, 2, 16, 24, 13]; // Tmax > T: spare positions stay untouched
    const rng = new Rng(7);
    const q = rng.uniformArray(B * T * H * D, -2, 2); // (B, T, H, D)
    const k = rng.uniformArray(B * T * Hkv * D); // (B, T, Hkv, D)
    const v = rng.uniformArray(B * T * Hkv * D);
    const full = attentionForwardRef(q, k, v, { B, T, H, Hkv, D }).o; // (B, T, H, D)
    /** Rows [t0, t0 + S) of a (B, T, heads, D) tensor as a (B, S, heads, D) tensor. */
    const rows = (x: ArrayLike<number>, t0: number, S: number, heads: number) => {
      const out = new Float32Array(B * S * heads * D);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < S * heads * D; i++) out[b * S * heads * D + i] = x[(b * T + t0) * heads * D + i]!;
      }
      return out;
    };
    const kcache = createStorage(device, new Float32Array(B * Tmax * Hkv * D).fill(-9), 'kcache');
    const vcache = createStorage(device, new Float32Array(B * Tmax * Hkv * D).fill(-9), 'vcache');
    const step = (S: number) => {
      const bufs = { q: createStorage(device, B * S * H * D), k: createStorage(device, B * S * Hkv * D), v: createStorage(device, B * S * Hkv * D), o: createStorage(device, B * S * H * D) };
      const dims = { B, S, Tmax, H, Hkv, D };
      return { bufs, append: planKvAppend(device, { ...dims, ...bufs, kcache, vcache }), attend: planAttentionDecode(device, { ...dims, ...bufs, kcache, vcache }) };
    };
    const prefill = step(P);
    const decode = step(1); // one plan, pos moved by update() every step
    const run = async (s: ReturnType<typeof step>, pos: number, S: number) => {
      device.queue.writeBuffer(s.bufs.q, 0, rows(q, pos, S, H));
      device.queue.writeBuffer(s.bufs.k, 0, rows(k, pos, S, Hkv));
      device.queue.writeBuffer(s.bufs.v, 0, rows(v, pos, S, Hkv));
      s.append.update(pos);
      s.attend.update(pos);
      submitDispatches(device, dispatchesOf(s.append, s.attend));
      return readF32(device, s.bufs.o, B * S * H * D);
    };
    await withGpuErrors(device, 'decode loop', async () => {
      const o0 = await run(prefill, 0, P);
      expect(failures([{ name: 'prefill o', ...compareArrays(o0, rows(full, 0, P, H), DECODE_TOLERANCE) }])).toBe('');
      for (let t = P; t < T; t++) {
        const o = await run(decode, t, 1);
        expect(failures([{ name: `step ${t} o`, ...compareArrays(o, rows(full, t, 1, H), DECODE_TOLERANCE) }])).toBe('');
      }
    });
    const kc = await readF32(device, kcache, B * Tmax * Hkv * D);
    const vc = await readF32(device, vcache, B * Tmax * Hkv * D);
    for (let b = 0; b < B; b++) {
      const row = Hkv * D;
      expect([...kc.subarray(b * Tmax * row, b * Tmax * row + T * row)]).toEqual([...k.subarray(b * T * row, (b + 1) * T * row)]);
      expect([...vc.subarray(b * Tmax * row, b * Tmax * row + T * row)]).toEqual([...v.subarray(b * T * row, (b + 1) * T * row)]);
      expect([...kc.subarray(b * Tmax * row + T * row, (b + 1) * Tmax * row)].every((x) => x === -9)).toBe(true);
    }
    for (const s of [prefill, decode]) for (const b of Object.values(s.bufs)) b.destroy();
    kcache.destroy();
    vcache.destroy();
  });

  it('is deterministic: two runs give bit-identical outputs', async () => {
    const c = { B: 1, S: 2, Tmax: 200, H: 4, Hkv: 1, D: 32, pos: 150 };
    const x = decodeInputs(c, 3);
    const a = await runDecodeStep(gpu().device, c, x);
    const b = await runDecodeStep(gpu().device, c, x);
    expect([...b.o]).toEqual([...a.o]);
  });

  it('runs on ranges of one slab at 256-byte offsets (read_write variant), writing nothing outside them', async () => {
    const { device } = gpu();
    const c = { B: 1, S: 2, Tmax: 9, H: 2, Hkv: 1, D: 8, pos: 4 };
    const { B, S, Tmax, H, Hkv, D, pos } = c;
    const x = decodeInputs(c, 5);
    const sizes = { q: B * S * H * D, k: B * S * Hkv * D, v: B * S * Hkv * D, kcache: B * Tmax * Hkv * D, vcache: B * Tmax * Hkv * D, o: B * S * H * D };
    const names = Object.keys(sizes) as (keyof typeof sizes)[];
    const slot = 512; // bytes per tensor (≥ 72 floats, a multiple of 256)
    const slab = new Float32Array((names.length * slot) / 4).fill(-7);
    const base = (name: keyof typeof sizes) => (names.indexOf(name) * slot) / 4;
    for (const name of ['q', 'k', 'v', 'kcache', 'vcache'] as const) slab.set(x[name], base(name));
    const buf = createStorage(device, slab, 'decode slab');
    const r = Object.fromEntries(names.map((name) => [name, { buffer: buf, offset: base(name) * 4, size: sizes[name] * 4 }])) as
      Record<keyof typeof sizes, { buffer: GPUBuffer; offset: number; size: number }>;
    await withGpuErrors(device, 'decode slab', () =>
      submitDispatches(device, dispatchesOf(planKvAppend(device, { ...c, ...r }), planAttentionDecode(device, { ...c, ...r }))));
    const out = await readF32(device, buf, slab.length);
    buf.destroy();
    const kcache = kvAppendRef(x.kcache, x.k, c, pos);
    const vcache = kvAppendRef(x.vcache, x.v, c, pos);
    const got = (name: keyof typeof sizes) => out.subarray(base(name), base(name) + sizes[name]);
    expect(failures([{ name: 'o', ...compareArrays(got('o'), attentionDecodeRef(x.q, kcache, vcache, c, pos), DECODE_TOLERANCE) }])).toBe('');
    expect([...got('kcache')]).toEqual([...Float32Array.from(kcache)]);
    expect([...got('vcache')]).toEqual([...Float32Array.from(vcache)]);
    expect([...got('q')]).toEqual([...x.q]); // inputs untouched
    for (const name of names) { // the gap after every tensor still holds the sentinel
      expect([...out.subarray(base(name) + sizes[name], base(name) + slot / 4)].every((v) => v === -7), name).toBe(true);
    }
  });

  it('update(pos) rejects a step past the end of the cache, naming the kernel and the sizes', () => {
    const { device } = gpu();
    const buf = () => createStorage(device, 1024);
    const [q, o, k, v, kcache, vcache] = [buf(), buf(), buf(), buf(), buf(), buf()];
    const dims = { B: 1, S: 3, Tmax: 10, H: 2, Hkv: 1, D: 8 };
    const append = planKvAppend(device, { ...dims, k, v, kcache, vcache });
    const attend = planAttentionDecode(device, { ...dims, q, o, kcache, vcache });
    expect(() => attend.update(7)).not.toThrow(); // 7 + 3 = Tmax: the last step that fits
    expect(() => attend.update(8)).toThrow(/attention_decode B=1 S=3 Tmax=10 H=2 Hkv=1 D=8: pos \+ S = 8 \+ 3 = 11 exceeds the cache capacity Tmax = 10/);
    expect(() => append.update(8)).toThrow(/kv_append B=1 S=3 Tmax=10 Hkv=1 D=8: pos \+ S = 8 \+ 3 = 11 exceeds/);
    expect(() => append.update(-1)).toThrow(/pos must be a non-negative integer, got -1/);
    expect(() => attend.update(1.5)).toThrow(/pos must be a non-negative integer, got 1.5/);
    expect(() => planAttentionDecode(device, { ...dims, q, o, kcache, vcache, pos: 9 })).toThrow(/exceeds the cache capacity/);
    for (const b of [q, o, k, v, kcache, vcache]) b.destroy();
  });

  it('rejects unsupported head dims, bad groupings, S > Tmax, short and overlapping buffers with a clear error', () => {
    const { device } = gpu();
    const buf = () => createStorage(device, 1024);
    const [big, k, v, kc, vc] = [buf(), buf(), buf(), buf(), buf()];
    const small = createStorage(device, 4);
    const bufs = { q: big, o: small, kcache: kc, vcache: vc };
    const ok = { B: 1, S: 1, Tmax: 5, H: 2, Hkv: 1, D: 8 };
    expect(() => planAttentionDecode(device, { ...bufs, ...ok, D: 24 })).toThrow(/attention_decode .*head dim D = 24 is not supported/);
    expect(() => planAttentionDecode(device, { ...bufs, ...ok, H: 3, Hkv: 2 })).toThrow(/H = 3 is not a multiple of Hkv = 2/);
    expect(() => planAttentionDecode(device, { ...bufs, ...ok, S: 6 })).toThrow(/S = 6 new tokens do not fit a cache of Tmax = 5/);
    expect(() => planAttentionDecode(device, { ...bufs, ...ok, B: 0 })).toThrow(/attention_decode B=0 S=1 Tmax=5 H=2 Hkv=1 D=8: B must be a positive integer, got 0/);
    expect(() => planAttentionDecode(device, { ...bufs, ...ok })).toThrow(/attention_decode B=1 S=1 Tmax=5 H=2 Hkv=1 D=8: o has 16 bytes, needs 64/);
    expect(() => planKvAppend(device, { k, v, kcache: kc, vcache: small, B: 1, S: 1, Tmax: 5, Hkv: 1, D: 8 }))
      .toThrow(/kv_append B=1 S=1 Tmax=5 Hkv=1 D=8: vcache has 16 bytes, needs 160/);
    expect(() => planAttentionDecode(device, { ...ok, q: { buffer: big, offset: 0, size: 64 }, o: { buffer: big, offset: 0, size: 64 }, kcache: kc, vcache: vc }))
      .toThrow(/q and o overlap in one buffer/);
    for (const b of [big, k, v, kc, vc, small]) b.destroy();
  });
});
