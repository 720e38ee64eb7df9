// Hidden-state similarity loss launcher (hidden-state / "feature" distillation): planHiddenLoss plans the one
// dispatch of hidden_loss.wgsl that writes per-row losses w·loss_n and the gradient dp = lossScale·w·∂loss_n/∂p of
// the projected student hidden p against the teacher hidden h (mse or cosine; see hidden.ref.ts, the CPU oracle).
// lossScale changes per batch: `update({ lossScale })` rewrites the uniform.
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import { checkHiddenLossArgs, HIDDEN_COS_EPS, type HiddenLossKind } from './hidden.ref.ts';
import code from './hidden_loss.wgsl?raw';

export { HIDDEN_COS_EPS, HIDDEN_LOSS_KINDS, type HiddenLossKind } from './hidden.ref.ts';

export const HiddenLossParams = uniformStruct('Params', { N: 'u32', C: 'u32', lossScale: 'f32', rowsX: 'u32' });

export interface HiddenLossArgs {
  N: number; // rows (B·T)
  /** The width compared: the teacher's hidden width Ct (the student's hidden is projected to it first). */
  Cs: number;
  p: Binding; // (N, Cs) projected student hidden, read
  h: Binding; // (N, Cs) teacher hidden, read
  weights: Binding; // (N) row weights, read (0 = masked: zero loss and gradient, p/h ignored)
  kind: HiddenLossKind;
  lossScale: number;
  losses: Binding; // (N) written: w·loss_n
  dp: Binding; // (N, Cs) written: lossScale·w·∂loss_n/∂p (must not share a buffer with p or h)
  /** Test override of maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
}

export interface HiddenLossPlan {
  dispatches: Dispatch[];
  /** Sets lossScale for the next encodes (writes the uniform). */
  update(u: { lossScale: number }): void;
}

export function planHiddenLoss(device: GPUDevice, a: HiddenLossArgs): HiddenLossPlan {
  const what = `hidden_loss N=${a.N} Cs=${a.Cs} kind=${a.kind}`;
  checkHiddenLossArgs(what, a);
  const { N, Cs: C } = a;
  const limit = a.maxBindingBytes ?? device.limits.maxStorageBufferBindingSize;
  const need = (name: string, b: Binding, floats: number) => {
    const bytes = bindingBytes(b);
    if (bytes < floats * 4) throw new Error(`${what}: ${name} has ${bytes} bytes, needs ${floats * 4} (${floats} floats)`);
    if (floats * 4 > limit) throw new Error(`${what}: ${name} needs ${floats * 4} bytes, above the per-binding limit of ${limit} bytes`);
  };
  need('p', a.p, N * C); need('h', a.h, N * C); need('weights', a.weights, N); need('losses', a.losses, N); need('dp', a.dp, N * C);
  const bufs = [a.p, a.h, a.weights, a.losses, a.dp].map(bufferOf);
  if (bufs[4] === bufs[0] || bufs[4] === bufs[1] || bufs[3] === bufs[4]) throw new Error(`${what}: dp must be its own buffer (not p's, h's or losses')`);

  const maxX = device.limits.maxComputeWorkgroupsPerDimension;
  const rowsX = Math.min(N, maxX), rowsY = Math.ceil(N / rowsX);
  if (rowsY > maxX) throw new Error(`${what}: N = ${N} rows exceed ${maxX}² workgroups`);
  const kind = a.kind === 'mse' ? 0 : 1;
  const consts = `const KIND: u32 = ${kind}u;\nconst EPS: f32 = ${HIDDEN_COS_EPS.toExponential()};\n`;
  const pipeline = cachedPipeline(device, `hidden_loss_${a.kind}`, HiddenLossParams.wgsl + consts + code);
  const pack = (lossScale: number) => HiddenLossParams.pack({ N, C, lossScale, rowsX });
  const uniforms = createUniform(device, pack(a.lossScale), what);
  const bindGroup = bindBuffers(device, pipeline, [a.p, a.h, a.weights, a.losses, a.dp, uniforms], what);
  return {
    dispatches: [{ label: what, pipeline, bindGroup, workgroups: [rowsX, rowsY, 1] }],
    update({ lossScale }) {
      if (!Number.isFinite(lossScale)) throw new Error(`${what}: lossScale must be a finite number, got ${lossScale}`);
      device.queue.writeBuffer(uniforms, 0, pack(lossScale));
    },
  };
}
