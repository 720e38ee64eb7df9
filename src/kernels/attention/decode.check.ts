// KV-cache decode attention checks against the CPU reference at odd shapes (first token, several key blocks of
// 128 with a tail, a prompt chunk crossing a block boundary, a full-cache prefill, grouped heads, every head dim),
// for the tests, the app's self-test and the CLI. Each check plans kv_append + attention_decode at pos 0, moves
// them to the check's pos with update(pos), and compares o and both caches (the caches exactly: a copy).
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planAttentionDecode, planKvAppend } from './decode.ts';
import { attentionDecodeRef, kvAppendRef, type DecodeDims } from './decode.ref.ts';

export interface DecodeCase extends DecodeDims {
  pos: number;
}

export const DECODE_CHECK_SHAPES: readonly DecodeCase[] = [
  { B: 1, S: 1, Tmax: 40, H: 1, Hkv: 1, D: 16, pos: 0 },
  { B: 2, S: 1, Tmax: 300, H: 4, Hkv: 2, D: 64, pos: 260 },
  { B: 1, S: 1, Tmax: 140, H: 6, Hkv: 2, D: 8, pos: 129 },
  { B: 1, S: 1, Tmax: 70, H: 2, Hkv: 1, D: 128, pos: 65 },
  { B: 2, S: 7, Tmax: 50, H: 4, Hkv: 4, D: 32, pos: 10 },
  { B: 1, S: 17, Tmax: 17, H: 4, Hkv: 2, D: 16, pos: 0 },
  { B: 1, S: 3, Tmax: 131, H: 2, Hkv: 2, D: 8, pos: 126 },
];

/** f32 kernel against the f64 reference; inputs of magnitude ≤ 2, outputs of order 1 (as attention.check.ts). */
export const DECODE_TOLERANCE: Tolerance = { atol: 2e-6, rtol: 2e-5 };
/** The caches are copies: any difference at all fails (a zero bound would make err/bound 0/0). */
const EXACT: Tolerance = { atol: 1e-30, rtol: 0 };

export interface DecodeInputs {
  q: Float32Array; // (B, S, H, D)
  k: Float32Array; // (B, S, Hkv, D)
  v: Float32Array; // (B, S, Hkv, D)
  kcache: Float32Array; // (B, Tmax, Hkv, D): earlier tokens at positions < pos, a poison value after
  vcache: Float32Array; // (B, Tmax, Hkv, D)
}

/** Positions ≥ pos hold large values: a kernel reading past its causal limit gets a visibly wrong o. */
export const DECODE_POISON = { k: 3, v: 100 } as const;

export function decodeInputs(c: DecodeCase, seed: number): DecodeInputs {
  const { B, S, Tmax, H, Hkv, D, pos } = c;
  const rng = new Rng(seed);
  const cache = (poison: number): Float32Array => {
    const x = new Float32Array(B * Tmax * Hkv * D).fill(poison);
    for (let b = 0; b < B; b++) x.set(rng.uniformArray(pos * Hkv * D), b * Tmax * Hkv * D);
    return x;
  };
  return {
    q: rng.uniformArray(B * S * H * D, -2, 2),
    k: rng.uniformArray(B * S * Hkv * D),
    v: rng.uniformArray(B * S * Hkv * D),
    kcache: cache(DECODE_POISON.k),
    vcache: cache(DECODE_POISON.v),
  };
}

export interface DecodeOutputs {
  o: Float32Array; // (B, S, H, D)
  kcache: Float32Array; // (B, Tmax, Hkv, D)
  vcache: Float32Array; // (B, Tmax, Hkv, D)
}

/** Runs one step (append then attention) on the GPU; o starts as NaN so unwritten elements fail. */
export async function runDecodeStep(device: GPUDevice, c: DecodeCase, x: DecodeInputs): Promise<DecodeOutputs> {
  const { B, S, Tmax, H, Hkv, D, pos } = c;
  const bufs = {
    q: createStorage(device, x.q, 'decode q'),
    k: createStorage(device, x.k, 'decode k'),
    v: createStorage(device, x.v, 'decode v'),
    kcache: createStorage(device, x.kcache, 'decode kcache'),
    vcache: createStorage(device, x.vcache, 'decode vcache'),
    o: nanStorage(device, B * S * H * D, 'decode o'),
  };
  return runOnGpu(device, `attention_decode ${decodeShapeName(c)}`, bufs, () => {
    const append = planKvAppend(device, { ...c, ...bufs, pos: 0 });
    const attend = planAttentionDecode(device, { ...c, ...bufs, pos: 0 });
    append.update(pos);
    attend.update(pos);
    return [append, attend];
  }, { o: B * S * H * D, kcache: B * Tmax * Hkv * D, vcache: B * Tmax * Hkv * D });
}

export async function checkDecode(device: GPUDevice, c: DecodeCase, seed: number): Promise<NamedComparison[]> {
  const x = decodeInputs(c, seed);
  const got = await runDecodeStep(device, c, x);
  const kcache = kvAppendRef(x.kcache, x.k, c, c.pos);
  const vcache = kvAppendRef(x.vcache, x.v, c, c.pos);
  const o = attentionDecodeRef(x.q, kcache, vcache, c, c.pos);
  return [
    { name: 'o', ...compareArrays(got.o, o, DECODE_TOLERANCE) },
    { name: 'kcache', ...compareArrays(got.kcache, kcache, EXACT) },
    { name: 'vcache', ...compareArrays(got.vcache, vcache, EXACT) },
  ];
}

export const decodeShapeName = (c: DecodeCase): string =>
  `B=${c.B} S=${c.S} Tmax=${c.Tmax} pos=${c.pos} H=${c.H} Hkv=${c.Hkv} D=${c.D}`;

export const decodeChecks: KernelCheck[] = DECODE_CHECK_SHAPES.map((c) => ({
  kernel: 'attention_decode',
  variant: 'kvcache',
  shape: decodeShapeName(c),
  run: (device: GPUDevice, seed: number) => checkDecode(device, c, seed),
}));
