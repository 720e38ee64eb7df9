// Hidden-state similarity loss launcher (hidden-state / "feature" distillation): planHiddenLoss plans the one
// dispatch of hidden_loss.wgsl that writes per-row losses w·loss_n and the gradient dp = lossScale·w·∂loss_n/∂p of
// the projected student hidden p against the teacher hidden h (mse or cosine; see hidden.ref.ts, the CPU oracle).
// lossScale changes per batch: `update({ lossScale })` rewrites the uniform.
import { bufferOf, type Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
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

/** One dispatch; update({ lossScale }) sets lossScale for the next encodes (writes the uniform). */
export function planHiddenLoss(device: GPUDevice, a: HiddenLossArgs): KernelPlan<{ lossScale: number }> {
  const { N, Cs: C } = a;
  const k = new Launch(device, 'hidden_loss', { N, Cs: C }, { shape: `N=${N} Cs=${C} kind=${a.kind}`, maxBindingBytes: a.maxBindingBytes });
  checkHiddenLossArgs(k.what, a);
  const t = k.bindAll({ p: [a.p, N * C], h: [a.h, N * C], weights: [a.weights, N], losses: [a.losses, N], dp: [a.dp, N * C] });
  const bufs = [a.p, a.h, a.weights, a.losses, a.dp].map(bufferOf);
  if (bufs[4] === bufs[0] || bufs[4] === bufs[1] || bufs[3] === bufs[4]) throw k.error("dp must be its own buffer (not p's, h's or losses')");

  const workgroups = k.grid(N); // one workgroup per row; the kernel takes the row width as rowsX
  const rowsX = workgroups[0];
  const values = (lossScale: number) => {
    if (!Number.isFinite(lossScale)) throw k.error(`lossScale must be a finite number, got ${lossScale}`);
    return { N, C, lossScale, rowsX };
  };
  const consts = `const KIND: u32 = ${a.kind === 'mse' ? 0 : 1}u;\nconst EPS: f32 = ${HIDDEN_COS_EPS.toExponential()};\n`;
  const params = k.uniform(HiddenLossParams, values(a.lossScale));
  const src = { key: `hidden_loss_${a.kind}`, code: HiddenLossParams.wgsl + consts + code };
  return {
    dispatches: [k.dispatch(src, [t.p, t.h, t.weights, t.losses, t.dp, params.buffer], workgroups)],
    update: ({ lossScale }) => params.write(values(lossScale)),
  };
}
