// ULD loss launcher (Universal Logit Distillation, cross-tokenizer KD): plans the dispatches of uld_loss.wgsl, the
// L1 distance between the student's sorted softmax(z / τ) and the teacher's sorted top-K probabilities, with the
// gradient assigned to a separate buffer (z is read-only). Rows are split into chunks whose bindings fit
// maxStorageBufferBindingSize (or a smaller `maxBindingBytes`), one dispatch per chunk; the per-step scalars
// (lossScale, weight: the gradient's factor is their product) are rewritten with `plan.update`.
import { subBinding, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan, type Uniform } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import { CHUNK_ROW_ALIGN } from './loss.ts';
import { checkUldShape } from './uld.ref.ts';
import lseWgsl from './logsumexp.wgsl?raw';
import code from './uld_loss.wgsl?raw';

export { ULD_KMAX, uldTeacherRow } from './uld.ref.ts';

export const UldLossParams = uniformStruct('Params', {
  N: 'u32', // rows of this dispatch (chunk)
  V: 'u32', // row width of the logits
  Vr: 'u32', // real tokens: columns Vr..V are padding (never read, g = 0)
  K: 'u32', // teacher entries per row
  tau: 'f32', // temperature
  scale: 'f32', // lossScale · weight
});

export interface UldLossArgs {
  N: number; // rows, B·T
  V: number; // vocabulary (row width of the logits)
  /** Real tokens (default V): columns realVocab..V are vocabulary padding (never read, g = 0 there). */
  realVocab?: number;
  K: number; // teacher entries per row, 1 ≤ K ≤ min(realVocab, ULD_KMAX)
  temperature: number; // τ > 0, fixed for the plan
  logits: Binding; // (N, V) f32 student logits z, read only
  teacher: Binding; // (N, K) f32 q: each row sorted descending, zero-padded, sum ≤ 1 (uldTeacherRow)
  weights: Binding; // (N) f32 row weights, 0 = no ULD term (g row 0, loss 0, the row not read)
  losses: Binding; // (N) f32, assigned w·ULD
  grad: Binding; // (N, V) f32, assigned lossScale·weight·w·∂ULD/∂z; must not overlap the logits
  lossScale: number;
  weight: number; // the ULD term's weight in the trainer's loss
  /** A binding limit below the device's (tests force chunking with it). */
  maxBindingBytes?: number;
}

/** The per-step scalars of plan.update: the gradient's factor is lossScale · weight. */
export interface UldScalars {
  lossScale: number;
  weight: number;
}

/**
 * Plans the ULD loss over N rows: one workgroup per row, rows in chunks within the binding limit. `update()`
 * rewrites lossScale / weight of every chunk (queue.writeBuffer; takes effect at the next submit).
 */
export function planUldLoss(device: GPUDevice, args: UldLossArgs): KernelPlan<Partial<UldScalars>> {
  const { N, V, K } = args;
  const Vr = args.realVocab ?? V;
  const k = new Launch(device, 'uld_loss', { N, V, realVocab: Vr, K }, {
    shape: `N=${N} V=${V}${Vr !== V ? ` (${Vr} real)` : ''} K=${K}`, maxBindingBytes: args.maxBindingBytes,
  });
  checkUldShape(k.what, V, Vr, K, args.temperature);
  const checkScalars = (s: UldScalars) => {
    for (const [name, v] of Object.entries(s)) if (!Number.isFinite(v)) throw k.error(`${name} must be a finite number, got ${v}`);
  };

  // Every tensor: its binding and bytes per row.
  const tensors: [string, Binding, number][] = [
    ['logits', args.logits, V * 4],
    ['teacher', args.teacher, K * 4],
    ['weights', args.weights, 4],
    ['losses', args.losses, 4],
    ['grad', args.grad, V * 4],
  ];
  for (const [name, b, rowBytes] of tensors) k.check(name, b, (N * rowBytes) / 4);

  // Chunks: rows·(largest row bytes) within the binding limit, a multiple of 64 rows, ≤ the workgroup-count limit.
  const maxBytes = k.maxBindingBytes;
  const rowBytes = V * 4;
  let rows = Math.min(N, Math.floor(maxBytes / rowBytes), device.limits.maxComputeWorkgroupsPerDimension);
  if (rows < N) {
    rows -= rows % CHUNK_ROW_ALIGN;
    if (rows < 1) throw k.error(`a chunk of ${CHUNK_ROW_ALIGN} rows needs ${CHUNK_ROW_ALIGN * rowBytes} bytes in one binding, over the limit of ${maxBytes} bytes`);
  }

  const src = { key: 'uld_loss', code: UldLossParams.wgsl + lseWgsl + code };
  let scalars: UldScalars = { lossScale: args.lossScale, weight: args.weight };
  checkScalars(scalars);
  const values = (rowsInChunk: number) => ({ N: rowsInChunk, V, Vr, K, tau: args.temperature, scale: scalars.lossScale * scalars.weight });
  const chunks: { rows: number; params: Uniform<typeof UldLossParams.fields> }[] = [];
  const dispatches: Dispatch[] = [];
  for (let r0 = 0; r0 < N; r0 += rows) {
    const R = Math.min(rows, N - r0);
    const params = k.uniform(UldLossParams, values(R), `uld_loss rows ${r0}..${r0 + R} params`);
    const bindings = tensors.map(([, b, rb]) => subBinding(b, r0 * rb, R * rb));
    dispatches.push(k.dispatch(src, [...bindings, params.buffer], k.workgroups(R), `uld_loss N=${N} V=${V} K=${K} rows ${r0}..${r0 + R}`));
    chunks.push({ rows: R, params });
  }
  return {
    dispatches,
    update(next) {
      const s = { ...scalars, ...next };
      checkScalars(s);
      scalars = s;
      for (const c of chunks) c.params.write(values(c.rows));
    },
  };
}
