// Matmul launcher: plans C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias) as dispatches (pipeline cached
// per device and variant, uniforms packed from the struct declared here) that can be encoded any number of times.
// The three forms backprop needs for y = x·Wᵀ (W stored (out, in) as in HF):
//   forward  y  (BT, out) = x (BT, in) · Wᵀ          → transB
//   backward dx (BT, in)  = dy (BT, out) · W          → plain
//   backward dW (out, in) += dyᵀ (out, BT) · x        → transA, beta = 1
// Tensors larger than maxStorageBufferBindingSize are split: over rows of A and C when A is not transposed,
// over K (accumulating into C) when it is. The kernel lab (autotune.ts picks the fastest per shape on the device
// at hand; every variant computes the same contract, checked by matmul.check.ts at the same shapes and forms):
//   'tiled'       default; 64×64 tiles, 4×4 outputs per thread (matmul_tiled.wgsl)
//   'tiled128x64' 8×4 per thread;  'tiled128' 128×128 tiles, 8×8 per thread (same WGSL, other constants)
//   'vec4'        tiled128's tiling with vec4 global loads and vec4 workgroup-memory reads (matmul_vec4.wgsl).
//                 Applies to every problem: an operand is loaded as vec4 when its row stride and batch stride are
//                 multiples of 4 and its binding offset of 16 bytes, by scalars otherwise (decided per dispatch).
//   'dbuf'        'vec4' with double-buffered tiles: slice k+1 fetched while slice k is multiplied, one barrier
//                 per slice (matmul_dbuf.wgsl)
//   'subgroup'    tiled128 sharing A between lanes by subgroupShuffle (matmul_subgroup.wgsl); only on devices
//                 with the 'subgroups' feature — forced elsewhere, planMatmul throws MatmulVariantNotApplicable
//   'naive'       one thread per output: the fallback and second opinion (its own file, sharing nothing)
// The register-tiled variants share their bindings, tile origin and per-output epilogue (matmul_common.wgsl) and
// the slice loads and stores of their tiles (matmul_tile_io.wgsl scalar, matmul_vec4_io.wgsl vec4); each keeps its
// own main() and inner product.
// MATMUL_VARIANT_INFO holds each variant's `applies(problem, device)`; the autotuner and the bench skip variants
// that do not apply, and planMatmul refuses them with a clear error.
// A 16-bit B (bFormat 'bf16' | 'f16': a frozen LoRA base in half the bytes, issue #21): B's binding holds u32 words,
// element e in half (e & 1) of word e >> 1, low half first — a bf16/f16 safetensors tensor's bytes as they are
// (src/util/half.ts packs them). ldb and strideB still count elements; the kernels decode each element to f32 as they
// load it (readB in matmul_common.wgsl, bAt in matmul_naive.wgsl) and compute in f32. Every variant but the vec4-load
// ones ('vec4', 'dbuf': their B quads are 16-byte f32 loads) takes it.
import { bindingBytes, dummyStorage, offsetOf, subBinding, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { Launch, needsReadWrite, storageAccess, type KernelPlan, type KernelSource } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import commonWgsl from './matmul_common.wgsl?raw';
import dbufWgsl from './matmul_dbuf.wgsl?raw';
import splitKReduceWgsl from './matmul_splitk_reduce.wgsl?raw';
import naiveWgsl from './matmul_naive.wgsl?raw';
import subgroupWgsl from './matmul_subgroup.wgsl?raw';
import tileIoWgsl from './matmul_tile_io.wgsl?raw';
import tiledWgsl from './matmul_tiled.wgsl?raw';
import vec4Wgsl from './matmul_vec4.wgsl?raw';
import vec4IoWgsl from './matmul_vec4_io.wgsl?raw';
import type { HalfFormat } from '../../util/half.ts';
import type { MatmulForm } from './matmul.ref.ts';

export const MatmulParams = uniformStruct('Params', {
  M: 'u32', N: 'u32', K: 'u32', lda: 'u32', ldb: 'u32', ldc: 'u32',
  strideA: 'u32', strideB: 'u32', strideC: 'u32', alpha: 'f32', beta: 'f32',
});
export const SplitKReduceParams = uniformStruct('ReduceParams', {
  count: 'u32', N: 'u32', slots: 'u32', slot: 'u32', width: 'u32', beta: 'f32',
});

interface Tiling { TM: number; TN: number; TK: number; WG: number; RM: number; RN: number }
const TILE128: Tiling = { TM: 128, TN: 128, TK: 8, WG: 16, RM: 8, RN: 8 };
/** The kernel lab: register-tiled variants, by tile size and outputs per thread (constants baked into the WGSL). */
const TILINGS = {
  tiled: { TM: 64, TN: 64, TK: 16, WG: 16, RM: 4, RN: 4 },
  tiled128x64: { TM: 128, TN: 64, TK: 8, WG: 16, RM: 8, RN: 4 },
  tiled128: TILE128,
  vec4: TILE128,
  dbuf: TILE128,
  subgroup: TILE128,
} satisfies Record<string, Tiling>;

export const MATMUL_VARIANTS = ['tiled', 'tiled128x64', 'tiled128', 'vec4', 'dbuf', 'subgroup', 'naive'] as const;
export type MatmulVariant = (typeof MATMUL_VARIANTS)[number];

/** How B's binding stores its elements: f32, or 16-bit values packed in pairs into u32 words (the banner). */
export type MatmulBFormat = 'f32' | HalfFormat;
/** B_FORMAT in the WGSL. */
const B_FORMAT_CODE: Record<MatmulBFormat, number> = { f32: 0, bf16: 1, f16: 2 };

/** Bytes of n elements of B in `format` (16-bit: whole u32 words, an odd count rounded up). */
export const matmulBBytes = (n: number, format: MatmulBFormat = 'f32'): number => (format === 'f32' ? 4 * n : 4 * Math.ceil(n / 2));

/** A matmul problem as the autotuner keys it: shape, transposes and B's format (batch 1). */
export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Default 'f32'. */
  bFormat?: MatmulBFormat;
}

export interface MatmulVariantInfo {
  /** WGSL after Params and the constants (`enable` lines are hoisted to the top). */
  wgsl: string;
  /** Can this variant run the problem on this device? False: the autotuner and bench skip it, planMatmul refuses. */
  applies(problem: MatmulProblem, device: GPUDevice): boolean;
  /** What `applies` requires, for the error message. */
  requires: string;
}

const always = (): boolean => true;
const f32B = (p: MatmulProblem): boolean => (p.bFormat ?? 'f32') === 'f32';
/** The register-tiled variants' WGSL: matmul_common.wgsl, then the scalar or vec4 tile I/O, then the kernel. */
const scalarTiles = (wgsl: string): string => commonWgsl + tileIoWgsl + wgsl;
const vec4Tiles = (wgsl: string): string => commonWgsl + vec4IoWgsl + wgsl;
export const MATMUL_VARIANT_INFO: Record<MatmulVariant, MatmulVariantInfo> = {
  tiled: { wgsl: scalarTiles(tiledWgsl), applies: always, requires: 'nothing' },
  tiled128x64: { wgsl: scalarTiles(tiledWgsl), applies: always, requires: 'nothing' },
  tiled128: { wgsl: scalarTiles(tiledWgsl), applies: always, requires: 'nothing' },
  // Unaligned layouts fall back to scalar loads per operand, so every problem runs.
  // A 16-bit B has no 16-byte quads of f32 to load: these refuse it rather than lose their point.
  vec4: { wgsl: vec4Tiles(vec4Wgsl), applies: f32B, requires: "an f32 B (bFormat 'f32')" },
  dbuf: { wgsl: vec4Tiles(dbufWgsl), applies: f32B, requires: "an f32 B (bFormat 'f32')" },
  subgroup: { wgsl: scalarTiles(subgroupWgsl), applies: (_, device) => device.features.has('subgroups'), requires: "the device feature 'subgroups'" },
  naive: { wgsl: naiveWgsl, applies: always, requires: 'nothing' },
};

/**
 * The variant for a problem nobody has measured: the 64×64 tile ('tiled'), except where a dimension is at most 16 —
 * then most of each tile is empty (a 16-wide student's projections and its tied-embedding gradients over the
 * vocabulary) or K is one slice, register tiling buys nothing, and one thread per output ('naive') does only the
 * useful work (on SwiftShader 3-6× faster at 48×16×128256 in every backprop form).
 */
export const defaultMatmulVariant = (p: MatmulProblem): MatmulVariant => (Math.min(p.M, p.N, p.K) <= 16 ? 'naive' : 'tiled');

/** planMatmul was asked for a variant whose `applies` is false for the problem on this device. */
export class MatmulVariantNotApplicable extends Error {
  override name = 'MatmulVariantNotApplicable';
}

export const matmulVariantApplies = (variant: MatmulVariant, problem: MatmulProblem, device: GPUDevice): boolean =>
  MATMUL_VARIANT_INFO[variant].applies(problem, device);

/** The variants that apply to `problem` on `device`, in MATMUL_VARIANTS order. */
export const applicableMatmulVariants = (problem: MatmulProblem, device: GPUDevice): MatmulVariant[] =>
  MATMUL_VARIANTS.filter((v) => matmulVariantApplies(v, problem, device));

/** Variants with vec4 global loads: they take two more bindings (A and B again as array<vec4f>) and VEC_A/VEC_B. */
const isVec4 = (v: MatmulVariant): boolean => v === 'vec4' || v === 'dbuf';

/** A product C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias) of the given form (matmul.ref.ts). */
export interface MatmulArgs extends MatmulForm {
  a: Binding; // (M, K), or (K, M) when transA; batched: batch × strideA elements
  b: Binding; // (K, N), or (N, K) when transB; in bFormat
  /** How b stores its elements (default 'f32'); 'bf16' | 'f16': packed pairs in u32 words (the banner). */
  bFormat?: MatmulBFormat;
  c: Binding; // (M, N), written (or accumulated into with beta)
  /** (N) added to every row of C. */
  bias?: Binding;
  M: number;
  N: number;
  K: number;
  variant?: MatmulVariant;
  /** Split work so that no binding exceeds this many bytes (default and cap: the device's limit). */
  maxBindingBytes?: number;
  /** Split-K: compute K in this many chunks in parallel, then sum them (default: chosen by splitKChunks; 1: never). */
  splitK?: number;
}


interface Flags { transA: boolean; transB: boolean; hasBias: boolean; useBeta: boolean; vecA: boolean; vecB: boolean; bFormat: MatmulBFormat }

function sourceFor(variant: MatmulVariant, f: Flags): KernelSource {
  const bools = { TRANS_A: f.transA, TRANS_B: f.transB, HAS_BIAS: f.hasBias, USE_BETA: f.useBeta, ...(isVec4(variant) ? { VEC_A: f.vecA, VEC_B: f.vecB } : {}) };
  const flags = Object.entries(bools).map(([k, v]) => `const ${k}: bool = ${v};\n`).join('') + `const B_FORMAT: u32 = ${B_FORMAT_CODE[f.bFormat]}u;\n`;
  const consts = variant === 'naive' ? '' : Object.entries(TILINGS[variant]).map(([k, v]) => `const ${k}: u32 = ${v}u;\n`).join('');
  // `enable` directives must precede every declaration, so they go above Params.
  const lines = MATMUL_VARIANT_INFO[variant].wgsl.split('\n');
  const isDirective = (l: string) => /^\s*enable\s+[\w\s,]+;\s*$/.test(l);
  const code = lines.filter(isDirective).map((l) => `${l.trim()}\n`).join('') + MatmulParams.wgsl + consts + flags + lines.filter((l) => !isDirective(l)).join('\n');
  // A 16-bit B's format after the variant (f32 keys as they always were); the flags last: tests read VEC_A VEC_B off
  // the key's end.
  const format = f.bFormat === 'f32' ? '' : `_${f.bFormat}`;
  return { key: `matmul_${variant}${format}_${Object.values(bools).map(Number).join('')}`, code };
}


export function planMatmul(device: GPUDevice, args: MatmulArgs): KernelPlan {
  const { M, N, K } = args;
  const transA = !!args.transA, transB = !!args.transB;
  const batch = args.batch ?? 1;
  const bFormat = args.bFormat ?? 'f32';
  const variant = args.variant ?? defaultMatmulVariant(args);
  const k = new Launch(device, `matmul${transA ? 'ᵀ' : ''}${transB ? 'ᵀ' : ''}`, { M, N, K, batch }, {
    shape: `${M}×${N}×${K}${batch > 1 ? ` ×${batch}` : ''}${bFormat === 'f32' ? '' : ` B ${bFormat}`}`, maxBindingBytes: args.maxBindingBytes,
  });
  if (!MATMUL_VARIANTS.includes(variant)) throw k.error(`unknown variant '${variant}' (have ${MATMUL_VARIANTS.join(', ')})`);
  if (!(bFormat in B_FORMAT_CODE)) throw k.error(`unknown bFormat '${bFormat}' (have ${Object.keys(B_FORMAT_CODE).join(', ')})`);
  const problem: MatmulProblem = { M, N, K, transA, transB, bFormat };
  if (!matmulVariantApplies(variant, problem, device)) {
    throw new MatmulVariantNotApplicable(`${k.what}: variant '${variant}' does not apply here: it needs ${MATMUL_VARIANT_INFO[variant].requires} ` +
      `(applicable: ${applicableMatmulVariants(problem, device).join(', ')})`);
  }
  const strideA = args.strideA ?? M * K, strideB = args.strideB ?? K * N, strideC = M * N;
  const alpha = args.alpha ?? 1, beta = args.beta ?? 0;
  const limit = k.maxBindingBytes;
  const needA = ((batch - 1) * strideA + M * K) * 4, needB = matmulBBytes((batch - 1) * strideB + K * N, bFormat), needC = batch * M * N * 4;
  // Launch.check counts 4-byte words: B's bytes are whole words in every format.
  for (const [name, bind, need] of [['A', args.a, needA], ['B', args.b, needB], ['C', args.c, needC], ['bias', args.bias, N * 4]] as const) {
    if (bind) k.check(name, bind, need / 4);
  }
  // Where a split starts B further in (along K): a byte offset, which for a 16-bit B must land on a word and keep
  // the binding offset 256-byte aligned — so splits along K step in multiples of kStep elements (64 f32 = 256 bytes;
  // 128 16-bit elements = 256 bytes), and bOffset refuses any other offset rather than bind a misaligned range.
  const align = device.limits.minStorageBufferOffsetAlignment;
  const kStep = bFormat === 'f32' ? 64 : 128;
  const bOffset = (elements: number): number => {
    const bytes = bFormat === 'f32' ? 4 * elements : 2 * elements;
    if (bytes % align !== 0) throw k.error(`B offset of ${elements} ${bFormat} elements is ${bytes} bytes, not a multiple of ${align} (splits of a 16-bit B start at element offsets whose bytes stay ${align}-byte aligned)`);
    return bytes;
  };
  const tile = variant === 'naive' ? { TM: 16, TN: 16 } : TILINGS[variant];
  const unused = dummyStorage(device);
  const access = storageAccess(MATMUL_VARIANT_INFO[variant].wgsl);

  interface Part {
    a: Binding; b: Binding; c: Binding; M: number; K: number; beta: number; bias: boolean;
    /** Split-K partials: batches over K chunks (row strides of the whole problem, batch strides of one chunk). */
    lda?: number; ldb?: number; strideA?: number; strideB?: number; strideC?: number; batch?: number;
  }
  const plan = (p: Part): Dispatch => {
    const lda = p.lda ?? (transA ? M : K), ldb = p.ldb ?? (transB ? K : N);
    const sA = p.strideA ?? strideA, sB = p.strideB ?? strideB, sC = p.strideC ?? strideC, nb = p.batch ?? batch;
    const bias = p.bias && args.bias ? args.bias : unused;
    // vec4 loads of an operand need every quad start 16-byte aligned: row stride, batch stride, binding offset; and
    // the fast path: in the read_write variant (C shares a buffer with an input) A and its vec4 view would both be
    // writable bindings of one range, which WebGPU rejects.
    const vec = isVec4(variant) && !needsReadWrite(access, [p.a, p.b, p.c, bias]);
    const vecA = vec && lda % 4 === 0 && sA % 4 === 0 && offsetOf(p.a) % 16 === 0;
    const vecB = vec && bFormat === 'f32' && ldb % 4 === 0 && sB % 4 === 0 && offsetOf(p.b) % 16 === 0;
    const src = sourceFor(variant, { transA, transB, hasBias: p.bias, useBeta: p.beta !== 0, vecA, vecB, bFormat });
    const workgroups = k.workgroups(Math.ceil(N / tile.TN), Math.ceil(p.M / tile.TM), nb);
    const params = k.uniform(MatmulParams, { M: p.M, N, K: p.K, lda, ldb, ldc: N, strideA: sA, strideB: sB, strideC: sC, alpha, beta: p.beta });
    const bindings = [p.a, p.b, p.c, bias, params.buffer];
    if (isVec4(variant)) bindings.push(vecA ? p.a : unused, vecB ? p.b : unused);
    return k.dispatch(src, bindings, workgroups, `${k.what} ${variant}`);
  };
  const fits = needA <= limit && needB <= limit && needC <= limit;
  const chunks = batch === 1 && fits ? splitKChunks(M, N, K, tile, args.splitK, kStep) : 1;
  if (chunks > 1) return { dispatches: planSplitK(k, { ...args, M, N, K, alpha, beta }, chunks, kStep, bOffset, plan) };
  const whole = { a: args.a, b: args.b, c: args.c, M, K, beta, bias: !!args.bias };
  if (fits) return { dispatches: [plan(whole)] };

  // Split. Chunks are multiples of 64 rows (of A and C; B whole) or of kStep along K, so that byte offsets stay
  // 256-aligned.
  const fail = (why: string) => k.error(`${why} exceeds the ${limit}-byte binding limit and cannot be split (only batch 1, and only along rows of A/C or along K)`);
  if (batch > 1) throw fail('a batched operand');
  if (needB > limit && !(transA && !transB)) throw fail('B');
  if (!transA) {
    const rows = Math.floor(limit / (4 * Math.max(K, N)) / 64) * 64;
    if (rows < 64) throw fail('64 rows of A or C');
    const out: Dispatch[] = [];
    for (let m0 = 0; m0 < M; m0 += rows) {
      const r = Math.min(rows, M - m0);
      out.push(plan({ a: subBinding(args.a, m0 * K * 4, r * K * 4), b: args.b, c: subBinding(args.c, m0 * N * 4, r * N * 4), M: r, K, beta, bias: !!args.bias }));
    }
    return { dispatches: out };
  }
  // transA: A is stored (K, M); split K and accumulate. B rows (K, N) split alike; Bᵀ (N, K) is offset by k0.
  if (needC > limit) throw fail('C');
  // (4 bytes per element of B bounds a 16-bit B's chunk too.)
  const ks = Math.floor(limit / (4 * Math.max(M, transB ? 1 : N)) / kStep) * kStep;
  if (ks < kStep) throw fail(`${kStep} rows of Aᵀ or B`);
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += ks) {
    const kc = Math.min(ks, K - k0);
    const bPart = transB ? subBinding(args.b, bOffset(k0), needB - bOffset(k0)) : subBinding(args.b, bOffset(k0 * N), matmulBBytes(kc * N, bFormat));
    out.push(plan({ a: subBinding(args.a, k0 * M * 4, kc * M * 4), b: bPart, c: args.c, M, K: kc, beta: k0 === 0 ? beta : 1, bias: k0 === 0 && !!args.bias }));
  }
  return { dispatches: out };
}

// Split-K. A product with few output tiles and a long K (dx = dlogits · W over a large vocabulary: M = B·T rows,
// N = hidden, K = V) would run as a handful of workgroups walking all of K. Instead K is cut into chunks computed in
// parallel, as a batch over the chunks (batch strides step along K; the row strides stay the whole problem's), into
// partial products in a scratch buffer owned by the plan, which a reduction kernel sums into C with the bias and
// beta. The sum order differs from one pass over K, within the f32 dot-product tolerance the checks use.
const SPLITK = { minK: 2048, minChunk: 512, targetGroups: 64, maxTiles: 32 };

/** How many K chunks planMatmul uses for an unbatched M×N×K product (1: no split). Chunks are multiples of kStep. */
export function splitKChunks(M: number, N: number, K: number, tile: { TM: number; TN: number }, forced?: number, kStep = 64): number {
  if (forced !== undefined) {
    if (!Number.isInteger(forced) || forced < 1) throw new Error(`matmul ${M}×${N}×${K}: splitK must be a positive integer, got ${forced}`);
    return Math.ceil(K / kStep) < 2 ? 1 : forced;
  }
  const tiles = Math.ceil(M / tile.TM) * Math.ceil(N / tile.TN);
  if (tiles >= SPLITK.maxTiles || K < SPLITK.minK) return 1;
  return Math.max(1, Math.min(Math.ceil(SPLITK.targetGroups / tiles), Math.floor(K / SPLITK.minChunk)));
}

interface SplitKPart {
  a: Binding; b: Binding; c: Binding; M: number; K: number; beta: number; bias: boolean;
  lda: number; ldb: number; strideA: number; strideB: number; strideC: number; batch: number;
}

function planSplitK(
  k: Launch, args: MatmulArgs & { alpha: number; beta: number }, chunks: number, kStep: number, bOffset: (elements: number) => number,
  plan: (p: SplitKPart) => Dispatch,
): Dispatch[] {
  const { M, N, K, a, b } = args;
  const transA = !!args.transA, transB = !!args.transB;
  // Chunks of a multiple of kStep (64; 128 for a 16-bit B) along K keep every sub-binding offset 256-byte aligned;
  // the last may be shorter.
  const kc = Math.ceil(Math.ceil(K / chunks) / kStep) * kStep;
  const full = Math.floor(K / kc), rest = K - full * kc, slots = full + (rest > 0 ? 1 : 0);
  const slot = Math.ceil((M * N) / 64) * 64;
  const partials = k.device.createBuffer({ label: `${k.what} split-K partials`, size: slots * slot * 4, usage: GPUBufferUsage.STORAGE });
  const stepA = transA ? kc * M : kc, stepB = transB ? kc : kc * N; // elements from one chunk to the next
  const common = { c: partials, M, beta: 0, bias: false, lda: transA ? M : K, ldb: transB ? K : N, strideC: slot };
  const out: Dispatch[] = [];
  if (full > 0) out.push(plan({ ...common, a, b, K: kc, strideA: stepA, strideB: stepB, batch: full }));
  if (rest > 0) {
    const offA = full * stepA * 4, offB = bOffset(full * stepB);
    out.push(plan({
      ...common, a: subBinding(a, offA, bindingBytes(a) - offA), b: subBinding(b, offB, bindingBytes(b) - offB),
      c: subBinding(partials, full * slot * 4, slot * 4), K: rest, strideA: 0, strideB: 0, batch: 1,
    }));
  }
  const count = M * N, workgroups = k.grid(Math.ceil(count / 256));
  const hasBias = !!args.bias, useBeta = args.beta !== 0;
  const code = SplitKReduceParams.wgsl + `const HAS_BIAS: bool = ${hasBias};\nconst USE_BETA: bool = ${useBeta};\n` + splitKReduceWgsl;
  const params = k.uniform(SplitKReduceParams, { count, N, slots, slot, width: workgroups[0] * 256, beta: args.beta }, `${k.what} split-K params`);
  const bindings = [partials, args.c, args.bias ?? dummyStorage(k.device), params.buffer];
  out.push(k.dispatch({ key: `matmul_splitk_reduce_${Number(hasBias)}${Number(useBeta)}`, code }, bindings, workgroups, `${k.what} split-K ${slots} reduce`));
  return out;
}

/** FLOPs of one M×N×K product (a multiply and an add per term). */
export const matmulFlops = (M: number, N: number, K: number): number => 2 * M * N * K;
