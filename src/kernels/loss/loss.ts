// Fused classifier loss launcher: plans the dispatches of classifier_loss.wgsl (KD against a dense or top-k
// teacher + cross-entropy, gradient written in place over the student logits). Rows are split into chunks whose
// bindings fit maxStorageBufferBindingSize (or a smaller `maxBindingBytes`), one dispatch per chunk; per-step
// scalars (lossScale, kdWeight, ceWeight, temperature) are rewritten with `plan.update`. A padded vocabulary
// (`realVocab` < V: embedding rows past the tokenizer's) is masked: those columns are no token of any softmax.
import { bindBuffers, bindingBytes, cachedPipeline, createUniform, dummyStorage, offsetOf, subBinding, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import code from './classifier_loss.wgsl?raw';
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

export interface ClassifierLossPlan {
  /** One dispatch per chunk of rows, to be encoded in order. */
  dispatches: Dispatch[];
  rowsPerChunk: number;
  /** Rewrites the per-step scalars of every chunk (queue.writeBuffer; takes effect at the next submit). */
  update(scalars: Partial<LossScalars>): void;
}


export function planClassifierLoss(device: GPUDevice, args: ClassifierLossArgs): ClassifierLossPlan {
  const { N, V } = args;
  const Vr = args.realVocab ?? V;
  const what = `classifier_loss N=${N} V=${V}${Vr !== V ? ` (${Vr} real)` : ''}`;
  for (const [name, v] of Object.entries({ N, V, realVocab: Vr })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`classifier_loss: ${name} must be a positive integer, got ${v}`);
  }
  if (Vr > V) throw new Error(`${what}: realVocab ${Vr} is larger than the row width V = ${V}`);
  if (args.teacher && args.teacher.kind !== 'dense' && args.teacher.kind !== 'topk') {
    throw new Error(`${what}: unknown teacher kind '${(args.teacher as { kind: string }).kind}' (expected 'dense' or 'topk')`);
  }
  const teacher = args.objective === 'none' ? undefined : args.teacher; // pure CE ignores any teacher
  const teacherKind = teacher?.kind ?? 'none';
  const k = teacher?.kind === 'topk' ? teacher.k : 0;
  const policy = teacher?.kind === 'topk' ? teacher.policy : 'renormalize';
  const objective = resolveObjective(what, args.objective, {
    beta: args.beta, lambda: args.lambda, teacher: teacherKind, policy, k: teacher?.kind === 'topk' ? k : undefined, V: Vr,
  });
  if (!(args.temperature > 0 && Number.isFinite(args.temperature))) throw new Error(`${what}: temperature must be > 0, got ${args.temperature}`);
  if (!args.labels && args.ceWeight !== 0) throw new Error(`${what}: ceWeight is ${args.ceWeight} but no labels were given`);

  // Every tensor: its binding and bytes per row.
  const tensors: [string, Binding | undefined, number][] = [
    ['logits', args.logits, V * 4],
    ['labels', args.labels, 4],
    ['weights', args.weights, 4],
    ['losses', args.losses, 8],
    ['teacher logits', teacher?.kind === 'dense' ? teacher.logits : undefined, V * 4],
    ['top-k ids', teacher?.kind === 'topk' ? teacher.ids : undefined, k * 4],
    ['top-k logprobs', teacher?.kind === 'topk' ? teacher.logprobs : undefined, k * 4],
  ];
  for (const [name, b, rowBytes] of tensors) {
    if (!b) continue;
    const have = bindingBytes(b);
    const off = offsetOf(b);
    if (have < N * rowBytes) throw new Error(`${what}: buffer ${name} has ${have} bytes, needs ${N * rowBytes} (${N}×${rowBytes / 4} × 4)`);
    if (off % 256 !== 0) throw new Error(`${what}: binding ${name} starts at byte ${off}, not a multiple of 256`);
  }

  // Chunks: rows·(largest row bytes) within the binding limit, a multiple of 64 rows, ≤ the workgroup-count limit.
  const maxBytes = Math.min(device.limits.maxStorageBufferBindingSize, args.maxBindingBytes ?? Infinity);
  const rowBytes = Math.max(...tensors.filter(([, b]) => b).map(([, , r]) => r));
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  let rows = Math.min(N, Math.floor(maxBytes / rowBytes), maxGroups);
  if (rows < N) {
    rows -= rows % CHUNK_ROW_ALIGN;
    if (rows < 1) {
      throw new Error(
        `${what}: a chunk of ${CHUNK_ROW_ALIGN} rows needs ${CHUNK_ROW_ALIGN * rowBytes} bytes in one binding, over the limit of ${maxBytes} bytes`,
      );
    }
  }

  const consts =
    `const OBJECTIVE: u32 = ${OBJECTIVE_CODE[objective]}u;\nconst TEACHER: u32 = ${TEACHER_CODE[teacherKind]}u;\n` +
    `const POLICY: u32 = ${POLICY_CODE[policy]}u;\nconst MIN_MISSING: f32 = ${MIN_MISSING_MASS.toExponential()};\n`;
  const key = `classifier_loss_${objective}_${teacherKind}${teacherKind === 'topk' ? `_${policy}` : ''}`;
  const pipeline = cachedPipeline(device, key, ClassifierLossParams.wgsl + consts + code);
  const dummy = dummyStorage(device); // bound where a variant reads nothing (no labels, no teacher)

  let scalars: LossScalars = { temperature: args.temperature, kdWeight: args.kdWeight, ceWeight: args.ceWeight, lossScale: args.lossScale };
  const pack = (rowsInChunk: number): ArrayBuffer =>
    ClassifierLossParams.pack({
      N: rowsInChunk, V, Vr, k, hasLabels: args.labels ? 1 : 0, ...scalars, beta: args.beta ?? 0.5, lambda: args.lambda ?? 0.1,
    });
  const chunks: { rows: number; uniforms: GPUBuffer }[] = [];
  const dispatches: Dispatch[] = [];
  for (let r0 = 0; r0 < N; r0 += rows) {
    const R = Math.min(rows, N - r0);
    const uniforms = createUniform(device, pack(R), `${key} rows ${r0}..${r0 + R} params`);
    const bindings = tensors.map(([, b, rb]) => (b ? subBinding(b, r0 * rb, R * rb) : dummy));
    const label = `${key} N=${N} V=${V} rows ${r0}..${r0 + R}`;
    dispatches.push({ label, pipeline, bindGroup: bindBuffers(device, pipeline, [...bindings, uniforms], label), workgroups: [R, 1, 1] });
    chunks.push({ rows: R, uniforms });
  }
  return {
    dispatches,
    rowsPerChunk: rows,
    update(next) {
      scalars = { ...scalars, ...next };
      if (!(scalars.temperature > 0 && Number.isFinite(scalars.temperature))) throw new Error(`${what}: temperature must be > 0, got ${scalars.temperature}`);
      for (const c of chunks) device.queue.writeBuffer(c.uniforms, 0, pack(c.rows));
    },
  };
}
