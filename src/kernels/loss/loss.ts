// Fused classifier loss launcher: plans the dispatches of classifier_loss.wgsl (KD against a dense or top-k
// teacher + cross-entropy, gradient written in place over the student logits). Rows are split into chunks whose
// bindings fit maxStorageBufferBindingSize (or a smaller `maxBindingBytes`), one dispatch per chunk; per-step
// scalars (lossScale, kdWeight, ceWeight, temperature) are rewritten with `plan.update`. A padded vocabulary
// (`realVocab` < V: embedding rows past the tokenizer's) is masked: those columns are no token of any softmax.
import { dummyStorage, subBinding, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan, type Uniform } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import code from './classifier_loss.wgsl?raw';
import lseWgsl from './logsumexp.wgsl?raw';
import {
  MIN_MISSING_MASS, OBJECTIVE_CODE, POLICY_CODE, TEACHER_CODE, resolveObjective, type KdObjective, type TopKPolicy,
} from './loss.config.ts';

export { NO_LABEL, TOPK_MAX, validateTopK, KD_OBJECTIVES, TOPK_POLICIES, type KdObjective, type TopKPolicy } from './loss.config.ts';

export const ClassifierLossParams = uniformStruct('Params', {
  N: 'u32', // rows of this dispatch (chunk)
  V: 'u32', // row width of the logits
  Vr: 'u32', // real tokens: columns Vr..V are padding (never read, dz = 0)
  k: 'u32',
  hasLabels: 'u32',
  temperature: 'f32',
  kdWeight: 'f32',
  ceWeight: 'f32',
  lossScale: 'f32',
  beta: 'f32',
  lambda: 'f32',
});

/** Rows of a chunk are a multiple of this, so every chunk's byte offsets are multiples of 256. */
export const CHUNK_ROW_ALIGN = 64;

export type TeacherArgs =
  | { kind: 'dense'; logits: Binding } // (N, V) f32 teacher logits
  | { kind: 'topk'; k: number; ids: Binding; logprobs: Binding; policy: TopKPolicy }; // (N, k) u32, (N, k) f32

export interface ClassifierLossArgs {
  N: number; // rows, B·T
  V: number; // vocabulary (row width of the logits)
  /** Real tokens (default V): columns realVocab..V are vocabulary padding, masked out of CE and KD (dz = 0 there);
   *  labels and top-k ids must be < realVocab. */
  realVocab?: number;
  logits: Binding; // (N, V) f32 student logits z, read and OVERWRITTEN with dz = lossScale·w·∂L/∂z
  labels?: Binding; // (N) u32, NO_LABEL = no CE term; absent = no CE at all (ceWeight must then be 0)
  weights: Binding; // (N) f32 row weights, 0 = masked row (dz = 0, losses = 0, its labels and teacher not read)
  losses: Binding; // (N, 2) f32, assigned [w·KD, w·CE]
  teacher?: TeacherArgs; // required unless objective is 'none'
  objective: KdObjective;
  temperature: number; // τ > 0 of the KD term (CE is always at τ = 1)
  kdWeight: number;
  ceWeight: number;
  lossScale: number; // e.g. 1 / Σw
  beta?: number; // jsd, in [0, 1]
  lambda?: number; // skew_fkl / skew_rkl, in [0, 1)
  /** Caps every binding's bytes below the device limit (tests force small chunks with it). */
  maxBindingBytes?: number;
}

export interface LossScalars {
  temperature: number;
  kdWeight: number;
  ceWeight: number;
  lossScale: number;
}

/**
 * One dispatch per chunk of rows, to be encoded in order; update(scalars) rewrites the per-step scalars of every
 * chunk (queue.writeBuffer; takes effect at the next submit).
 */
export function planClassifierLoss(device: GPUDevice, args: ClassifierLossArgs): KernelPlan<Partial<LossScalars>> {
  const { N, V } = args;
  const Vr = args.realVocab ?? V;
  const k = new Launch(device, 'classifier_loss', { N, V, realVocab: Vr }, {
    shape: `N=${N} V=${V}${Vr !== V ? ` (${Vr} real)` : ''}`, maxBindingBytes: args.maxBindingBytes,
  });
  const what = k.what;
  if (Vr > V) throw k.error(`realVocab ${Vr} is larger than the row width V = ${V}`);
  if (args.teacher && args.teacher.kind !== 'dense' && args.teacher.kind !== 'topk') {
    throw k.error(`unknown teacher kind '${(args.teacher as { kind: string }).kind}' (expected 'dense' or 'topk')`);
  }
  const teacher = args.objective === 'none' ? undefined : args.teacher; // pure CE ignores any teacher
  const teacherKind = teacher?.kind ?? 'none';
  const topk = teacher?.kind === 'topk' ? teacher.k : 0;
  const policy = teacher?.kind === 'topk' ? teacher.policy : 'renormalize';
  const objective = resolveObjective(what, args.objective, {
    beta: args.beta, lambda: args.lambda, teacher: teacherKind, policy, k: teacher?.kind === 'topk' ? topk : undefined, V: Vr,
  });
  const checkTemperature = (t: number) => { if (!(t > 0 && Number.isFinite(t))) throw k.error(`temperature must be > 0, got ${t}`); };
  checkTemperature(args.temperature);
  if (!args.labels && args.ceWeight !== 0) throw k.error(`ceWeight is ${args.ceWeight} but no labels were given`);

  // Every tensor: its binding and bytes per row.
  const tensors: [string, Binding | undefined, number][] = [
    ['logits', args.logits, V * 4],
    ['labels', args.labels, 4],
    ['weights', args.weights, 4],
    ['losses', args.losses, 8],
    ['teacher logits', teacher?.kind === 'dense' ? teacher.logits : undefined, V * 4],
    ['top-k ids', teacher?.kind === 'topk' ? teacher.ids : undefined, topk * 4],
    ['top-k logprobs', teacher?.kind === 'topk' ? teacher.logprobs : undefined, topk * 4],
  ];
  for (const [name, b, rowBytes] of tensors) if (b) k.check(name, b, (N * rowBytes) / 4);

  // Chunks: rows·(largest row bytes) within the binding limit, a multiple of 64 rows, ≤ the workgroup-count limit.
  const maxBytes = k.maxBindingBytes;
  const rowBytes = Math.max(...tensors.filter(([, b]) => b).map(([, , r]) => r));
  let rows = Math.min(N, Math.floor(maxBytes / rowBytes), device.limits.maxComputeWorkgroupsPerDimension);
  if (rows < N) {
    rows -= rows % CHUNK_ROW_ALIGN;
    if (rows < 1) throw k.error(`a chunk of ${CHUNK_ROW_ALIGN} rows needs ${CHUNK_ROW_ALIGN * rowBytes} bytes in one binding, over the limit of ${maxBytes} bytes`);
  }

  const consts =
    `const OBJECTIVE: u32 = ${OBJECTIVE_CODE[objective]}u;\nconst TEACHER: u32 = ${TEACHER_CODE[teacherKind]}u;\n` +
    `const POLICY: u32 = ${POLICY_CODE[policy]}u;\nconst MIN_MISSING: f32 = ${MIN_MISSING_MASS.toExponential()};\n`;
  const key = `classifier_loss_${objective}_${teacherKind}${teacherKind === 'topk' ? `_${policy}` : ''}`;
  const src = { key, code: ClassifierLossParams.wgsl + consts + lseWgsl + code };
  const dummy = dummyStorage(device); // bound where a variant reads nothing (no labels, no teacher)

  let scalars: LossScalars = { temperature: args.temperature, kdWeight: args.kdWeight, ceWeight: args.ceWeight, lossScale: args.lossScale };
  const values = (rowsInChunk: number) => ({
    N: rowsInChunk, V, Vr, k: topk, hasLabels: args.labels ? 1 : 0, ...scalars, beta: args.beta ?? 0.5, lambda: args.lambda ?? 0.1,
  });
  const chunks: { rows: number; params: Uniform<typeof ClassifierLossParams.fields> }[] = [];
  const dispatches: Dispatch[] = [];
  for (let r0 = 0; r0 < N; r0 += rows) {
    const R = Math.min(rows, N - r0);
    const params = k.uniform(ClassifierLossParams, values(R), `${key} rows ${r0}..${r0 + R} params`);
    const bindings = tensors.map(([, b, rb]) => (b ? subBinding(b, r0 * rb, R * rb) : dummy));
    dispatches.push(k.dispatch(src, [...bindings, params.buffer], k.workgroups(R), `${key} N=${N} V=${V} rows ${r0}..${r0 + R}`));
    chunks.push({ rows: R, params });
  }
  return {
    dispatches,
    update(next) {
      scalars = { ...scalars, ...next };
      checkTemperature(scalars.temperature);
      for (const c of chunks) c.params.write(values(c.rows));
    },
  };
}
