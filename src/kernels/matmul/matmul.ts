// Matmul launcher: plans C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias) as dispatches (pipeline cached
// per device and variant, uniforms packed from the struct declared here) that can be encoded any number of times.
// The three forms backprop needs for y = x·Wᵀ (W stored (out, in) as in HF):
//   forward  y  (BT, out) = x (BT, in) · Wᵀ          → transB
//   backward dx (BT, in)  = dy (BT, out) · W          → plain
//   backward dW (out, in) += dyᵀ (out, BT) · x        → transA, beta = 1
// Tensors larger than maxStorageBufferBindingSize are split: over rows of A and C when A is not transposed,
// over K (accumulating into C) when it is. Variants: 'tiled' (default; 64×64 tiles, 4×4 outputs per thread),
// 'tiled128x64' (8×4 per thread), 'tiled128' (128×128, 8×8 per thread), 'naive' (one thread per output);
// autotune.ts picks the fastest per shape on the device at hand.
import { bindBuffers, bindingBytes, cachedPipeline, createUniform, readWriteAll, sharesBuffer, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import naiveWgsl from './matmul_naive.wgsl?raw';
import tiledWgsl from './matmul_tiled.wgsl?raw';

export const MatmulParams = uniformStruct('Params', {
  M: 'u32', N: 'u32', K: 'u32', lda: 'u32', ldb: 'u32', ldc: 'u32',
  strideA: 'u32', strideB: 'u32', strideC: 'u32', alpha: 'f32', beta: 'f32',
});

interface Tiling { TM: number; TN: number; TK: number; WG: number; RM: number; RN: number }
/** The kernel lab: register-tiled variants of one WGSL source, by tile size and outputs per thread. */
const TILINGS = {
  tiled: { TM: 64, TN: 64, TK: 16, WG: 16, RM: 4, RN: 4 },
  tiled128x64: { TM: 128, TN: 64, TK: 8, WG: 16, RM: 8, RN: 4 },
  tiled128: { TM: 128, TN: 128, TK: 8, WG: 16, RM: 8, RN: 8 },
} satisfies Record<string, Tiling>;

export const MATMUL_VARIANTS = ['tiled', 'tiled128x64', 'tiled128', 'naive'] as const;
export type MatmulVariant = (typeof MATMUL_VARIANTS)[number];

export interface MatmulArgs {
  a: Binding; // (M, K), or (K, M) when transA; batched: batch × strideA elements
  b: Binding; // (K, N), or (N, K) when transB
  c: Binding; // (M, N), written (or accumulated into with beta)
  /** (N) added to every row of C. */
  bias?: Binding;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Batch count (default 1) and batch strides in elements (default the matrix sizes; 0 broadcasts A or B). */
  batch?: number;
  strideA?: number;
  strideB?: number;
  alpha?: number;
  /** 0 (default): C is overwritten and never read. 1: accumulate into C. */
  beta?: number;
  variant?: MatmulVariant;
  /** Split work so that no binding exceeds this many bytes (default and cap: the device's limit). */
  maxBindingBytes?: number;
}

const dummies = new WeakMap<GPUDevice, GPUBuffer>();
function dummy(device: GPUDevice): GPUBuffer {
  let d = dummies.get(device);
  if (!d) dummies.set(device, (d = device.createBuffer({ label: 'matmul no-bias', size: 16, usage: GPUBufferUsage.STORAGE })));
  return d;
}

function pipelineFor(device: GPUDevice, variant: MatmulVariant, transA: boolean, transB: boolean, hasBias: boolean, useBeta: boolean, aliased: boolean) {
  const flags = `const TRANS_A: bool = ${transA};\nconst TRANS_B: bool = ${transB};\nconst HAS_BIAS: bool = ${hasBias};\nconst USE_BETA: bool = ${useBeta};\n`;
  const key = `matmul_${variant}_${+transA}${+transB}${+hasBias}${+useBeta}${aliased ? '_rw' : ''}`;
  const consts = variant === 'naive' ? '' : Object.entries(TILINGS[variant]).map(([k, v]) => `const ${k}: u32 = ${v}u;\n`).join('');
  const code = MatmulParams.wgsl + consts + flags + (variant === 'naive' ? naiveWgsl : tiledWgsl);
  return cachedPipeline(device, key, aliased ? readWriteAll(code) : code);
}

const range = (b: Binding, offsetBytes: number, sizeBytes: number): Binding => {
  const base = 'mapState' in b ? { buffer: b, offset: 0 } : { buffer: b.buffer, offset: b.offset ?? 0 };
  return { buffer: base.buffer, offset: base.offset + offsetBytes, size: sizeBytes };
};

export function planMatmul(device: GPUDevice, args: MatmulArgs): Dispatch[] {
  const { M, N, K } = args;
  const transA = !!args.transA, transB = !!args.transB;
  const batch = args.batch ?? 1;
  const variant = args.variant ?? 'tiled';
  const what = `matmul${transA ? 'ᵀ' : ''}${transB ? 'ᵀ' : ''} ${M}×${N}×${K}${batch > 1 ? ` ×${batch}` : ''}`;
  for (const [name, v] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${name} must be a positive integer, got ${v}`);
  }
  if (!MATMUL_VARIANTS.includes(variant)) throw new Error(`${what}: unknown variant '${variant}' (have ${MATMUL_VARIANTS.join(', ')})`);
  const strideA = args.strideA ?? M * K, strideB = args.strideB ?? K * N, strideC = M * N;
  const alpha = args.alpha ?? 1, beta = args.beta ?? 0;
  const limit = Math.min(args.maxBindingBytes ?? Infinity, device.limits.maxStorageBufferBindingSize);
  const needA = ((batch - 1) * strideA + M * K) * 4, needB = ((batch - 1) * strideB + K * N) * 4, needC = batch * M * N * 4;
  for (const [name, bind, need] of [['A', args.a, needA], ['B', args.b, needB], ['C', args.c, needC], ['bias', args.bias, N * 4]] as const) {
    if (bind && bindingBytes(bind) < need) throw new Error(`${what}: ${name} has ${bindingBytes(bind)} bytes, needs ${need}`);
  }
  const tile = variant === 'naive' ? { TM: 16, TN: 16 } : TILINGS[variant];
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  if (Math.ceil(N / tile.TN) > maxGroups || batch > maxGroups) throw new Error(`${what}: over ${maxGroups} workgroups per dimension`);

  // Inputs and output may be ranges of one slab: then every binding must be read_write (see sharesBuffer).
  const aliased = sharesBuffer([args.a, args.b, args.c, args.bias]);
  const plan = (p: { a: Binding; b: Binding; c: Binding; M: number; K: number; beta: number; bias: boolean }): Dispatch => {
    if (Math.ceil(p.M / tile.TM) > maxGroups) throw new Error(`${what}: over ${maxGroups} workgroups per dimension`);
    const pipeline = pipelineFor(device, variant, transA, transB, p.bias, p.beta !== 0, aliased);
    const uniforms = createUniform(device, MatmulParams.pack({
      M: p.M, N, K: p.K, lda: transA ? M : K, ldb: transB ? K : N, ldc: N,
      strideA, strideB, strideC, alpha, beta: p.beta,
    }), `${what} params`);
    const bindGroup = bindBuffers(device, pipeline, [p.a, p.b, p.c, p.bias && args.bias ? args.bias : dummy(device), uniforms], what);
    return { label: `${what} ${variant}`, pipeline, bindGroup, workgroups: [Math.ceil(N / tile.TN), Math.ceil(p.M / tile.TM), batch] };
  };
  const whole = { a: args.a, b: args.b, c: args.c, M, K, beta, bias: !!args.bias };
  if (needA <= limit && needB <= limit && needC <= limit) return [plan(whole)];

  // Split. Chunks are multiples of 64 rows so that byte offsets stay 256-aligned.
  const fail = (why: string) => new Error(`${what}: ${why} exceeds the ${limit}-byte binding limit and cannot be split (only batch 1, and only along rows of A/C or along K)`);
  if (batch > 1) throw fail('a batched operand');
  if (needB > limit && !(transA && !transB)) throw fail('B');
  if (!transA) {
    const rows = Math.floor(limit / (4 * Math.max(K, N)) / 64) * 64;
    if (rows < 64) throw fail('64 rows of A or C');
    const out: Dispatch[] = [];
    for (let m0 = 0; m0 < M; m0 += rows) {
      const r = Math.min(rows, M - m0);
      out.push(plan({ a: range(args.a, m0 * K * 4, r * K * 4), b: args.b, c: range(args.c, m0 * N * 4, r * N * 4), M: r, K, beta, bias: !!args.bias }));
    }
    return out;
  }
  // transA: A is stored (K, M); split K and accumulate. B rows (K, N) split alike; Bᵀ (N, K) is offset by k0.
  if (needC > limit) throw fail('C');
  const ks = Math.floor(limit / (4 * Math.max(M, transB ? 1 : N)) / 64) * 64;
  if (ks < 64) throw fail('64 rows of Aᵀ or B');
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += ks) {
    const kc = Math.min(ks, K - k0);
    const bPart = transB ? range(args.b, k0 * 4, needB - k0 * 4) : range(args.b, k0 * N * 4, kc * N * 4);
    const d = plan({ a: range(args.a, k0 * M * 4, kc * M * 4), b: bPart, c: args.c, M, K: kc, beta: k0 === 0 ? beta : 1, bias: k0 === 0 && !!args.bias });
    out.push(d);
  }
  return out;
}

/** FLOPs of one M×N×K product (a multiply and an add per term). */
export const matmulFlops = (M: number, N: number, K: number): number => 2 * M * N * K;
