// Dropout kernel checks against the CPU oracle (dropout.ref.ts, the same hash): bit-exact, at odd shapes, for the
// assigned and the accumulating form, active and inactive (the identity copy / add).
import { createStorage } from '../../gpu/dispatch.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { planDropout } from './dropout.ts';
import { dropoutRef } from './dropout.ref.ts';

/** One f32 multiply and one add, each correctly rounded: the GPU equals the oracle bit for bit. */
const EXACT: Tolerance = { atol: Number.MIN_VALUE, rtol: 0 };

/** out = drop(x) and acc += drop(x) (the accumulating form over a random acc), active or not, against the oracle. */
export async function checkDropout(device: GPUDevice, N: number, cols: number, p: number, active: boolean, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const x = rng.uniformArray(N * cols, -4, 4);
  const acc = rng.uniformArray(N * cols, -4, 4);
  const stream = seed % 97, maskSeed = (seed * 2654435761) >>> 0;
  const what = `dropout N=${N} cols=${cols} p=${p}${active ? '' : ' inactive'}`;
  const bufs = { x: createStorage(device, x, `${what} x`), out: nanStorage(device, N * cols, `${what} out`), acc: createStorage(device, acc, `${what} acc`) };
  const state = { active, seed: maskSeed };
  const got = await runOnGpu(device, what, bufs, () => [
    planDropout(device, { x: bufs.x, out: bufs.out, N, cols, p, stream, ...state }),
    planDropout(device, { x: bufs.x, out: bufs.acc, N, cols, p, stream, accumulate: true, ...state }),
  ], { out: N * cols, acc: N * cols });
  const args = { p, seed: maskSeed, stream, active };
  return [
    { name: 'out', ...compareArrays(got.out, dropoutRef(x, { ...args, accumulate: false }), EXACT) },
    { name: 'out+=', ...compareArrays(got.acc, dropoutRef(x, { ...args, accumulate: true }, acc), EXACT) },
  ];
}

export const dropoutChecks: KernelCheck[] = ([[37, 53, 0.3, true], [1, 1, 0.5, true], [37, 53, 0.3, false], [5, 301, 0.9, true]] as const).map(([N, cols, p, active]) => ({
  kernel: 'dropout', variant: 'default', shape: `N=${N} cols=${cols} p=${p}${active ? '' : ' inactive'}`,
  run: (device: GPUDevice, seed: number) => checkDropout(device, N, cols, p, active, seed),
}));
