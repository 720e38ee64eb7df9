// Matmul launcher: plans a C = A·B dispatch (pipeline cached per device and variant, uniforms packed from the
// struct declared here) that can be encoded any number of times. Variants: 'tiled' (default) and 'naive'.
import { bindBuffers, cachedPipeline, createUniform, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import naiveWgsl from './matmul_naive.wgsl?raw';
import tiledWgsl from './matmul_tiled.wgsl?raw';

export const MatmulParams = uniformStruct('Params', { M: 'u32', N: 'u32', K: 'u32' });

export const MATMUL_VARIANTS = {
  naive: { code: naiveWgsl, tile: [16, 16] },
  tiled: { code: tiledWgsl, tile: [64, 64] },
} as const;
export type MatmulVariant = keyof typeof MATMUL_VARIANTS;

export interface MatmulArgs {
  a: GPUBuffer; // (M, K)
  b: GPUBuffer; // (K, N)
  c: GPUBuffer; // (M, N), overwritten
  M: number;
  N: number;
  K: number;
  variant?: MatmulVariant;
}

export function planMatmul(device: GPUDevice, args: MatmulArgs): Dispatch {
  const { M, N, K } = args;
  const variant = args.variant ?? 'tiled';
  for (const [name, v] of Object.entries({ M, N, K })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul: ${name} must be a positive integer, got ${v}`);
  }
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  for (const [name, buf, elems] of [['A', args.a, M * K], ['B', args.b, K * N], ['C', args.c, M * N]] as const) {
    if (buf.size < elems * 4) throw new Error(`matmul ${M}×${N}×${K}: buffer ${name} has ${buf.size} bytes, needs ${elems * 4}`);
    if (elems * 4 > maxBinding) {
      throw new Error(`matmul ${M}×${N}×${K}: ${name} is ${elems * 4} bytes, over this device's maxStorageBufferBindingSize (${maxBinding})`);
    }
  }
  const { code, tile } = MATMUL_VARIANTS[variant];
  const workgroups: [number, number, number] = [Math.ceil(N / tile[1]), Math.ceil(M / tile[0]), 1];
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups[0] > maxGroups || workgroups[1] > maxGroups) {
    throw new Error(`matmul ${M}×${N}×${K}: needs ${workgroups[0]}×${workgroups[1]} workgroups, over the limit of ${maxGroups} per dimension`);
  }
  const pipeline = cachedPipeline(device, `matmul_${variant}`, MatmulParams.wgsl + code);
  const uniforms = createUniform(device, MatmulParams.pack({ M, N, K }), `matmul ${M}x${N}x${K} params`);
  const bindGroup = bindBuffers(device, pipeline, [args.a, args.b, args.c, uniforms], `matmul ${M}x${N}x${K}`);
  return { label: `matmul_${variant} ${M}x${N}x${K}`, pipeline, bindGroup, workgroups };
}

/** FLOPs of one M×N×K product (a multiply and an add per term). */
export const matmulFlops = (M: number, N: number, K: number): number => 2 * M * N * K;
