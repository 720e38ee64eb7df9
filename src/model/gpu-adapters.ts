// The LoRA adapters of a GpuModel (issue #21): for each adapted linear weight of each layer, its A and B in the
// trained slab (TrainState, laid out by loraLayout), u = x·Aᵀ kept from the forward for dB, and one shared du scratch.
// GpuModel asks for a weight's adapter plans right after that weight's base product (forward: y += s·u·Bᵀ) and right
// after the base dx product of its backward (dx += du·A, dA/dB accumulated); a weight without an adapter gets none.
// The math and its oracle: gpu-lora.ts and lora.ts.
// LoRA dropout (lora.dropout = p > 0): one (N, max in) scratch for drop(x) shared by every linear, and a mask stream
// per adapted linear (layer·7 + its target's index in LORA_TARGETS). Every dropout plan made is kept, so that
// setDropout({ active, seed }) switches them all on or off and reseeds them before a submit (the plans are built once).
// Inactive (the default: evaluation, generation), the adapters compute y += s·(x·Aᵀ)·Bᵀ exactly. With p = 0 the
// plans are those without dropout: no scratch, no extra dispatch.
import type { Binding } from '../gpu/dispatch.ts';
import type { KernelPlan } from '../gpu/launch.ts';
import { planDropout, type DropoutArgs, type DropoutState } from '../kernels/dropout/dropout.ts';
import { allocBuffer } from './activations.ts';
import type { ModelConfig } from './config.ts';
import { planLoraBackward, planLoraForward, type LoraLinear, type PlanMatmul } from './gpu-lora.ts';
import { LORA_TARGETS, loraLayout, loraScale, type LoraConfig, type LoraLayout } from './lora.ts';
import type { TrainState } from './train-state.ts';

export class GpuAdapters {
  readonly layout: LoraLayout;
  private readonly linears = new Map<string, LoraLinear>();
  private readonly buffers: GPUBuffer[] = [];
  /** Every dropout plan of the forward and backward plans made so far (setDropout updates them). */
  private readonly drops: KernelPlan<DropoutState>[] = [];
  private dropState: DropoutState = { active: false, seed: 0 };

  constructor(readonly device: GPUDevice, config: ModelConfig, readonly lora: LoraConfig, N: number, state: TrainState) {
    this.layout = loraLayout(config, lora);
    const r = lora.rank, scale = loraScale(lora);
    const du = allocBuffer(device, N * r, 'lora.du');
    this.buffers.push(du);
    const maxIn = Math.max(...this.layout.entries.map((e) => (e.part === 'a' ? e.shape[1] : 0)));
    const scratch = lora.dropout > 0 ? allocBuffer(device, N * maxIn, 'lora.dropout scratch') : undefined;
    if (scratch) this.buffers.push(scratch);
    const targets = Object.keys(LORA_TARGETS);
    const plan = (a: DropoutArgs): KernelPlan => this.planDrop(a);
    for (const A of this.layout.entries) {
      if (A.part !== 'a') continue;
      const B = this.layout.byName.get(`${A.base}.lora_b`)!;
      const u = allocBuffer(device, N * r, `lora.u ${A.base}`);
      this.buffers.push(u);
      this.linears.set(A.base, {
        N, inF: A.shape[1], outF: B.shape[0], r, scale,
        a: state.params.binding(A.offset, A.size), b: state.params.binding(B.offset, B.size),
        da: state.grads.binding(A.offset, A.size), db: state.grads.binding(B.offset, B.size),
        u: { buffer: u }, du: { buffer: du },
        ...(scratch ? { dropout: { p: lora.dropout, stream: dropoutStream(A.base, targets), plan, scratch: { buffer: scratch } } } : {}),
      });
    }
  }

  /** Whether `weight` (e.g. 'layers.0.wq') has an adapter. */
  has(weight: string): boolean {
    return this.linears.has(weight);
  }

  /** After y = x·Wᵀ: y += s·(x·Aᵀ)·Bᵀ (nothing when `weight` has no adapter). */
  forward(mm: PlanMatmul, weight: string, x: Binding, y: Binding): KernelPlan[] {
    const l = this.linears.get(weight);
    return l ? planLoraForward(mm, l, x, y) : [];
  }

  /** After dx = dy·W: dx += the adapter's share; dA, dB accumulated (nothing when `weight` has no adapter). */
  backward(mm: PlanMatmul, weight: string, x: Binding, dy: Binding, dx: Binding): KernelPlan[] {
    const l = this.linears.get(weight);
    return l ? planLoraBackward(mm, l, x, dy, dx) : [];
  }

  /** Dropout on (with the step's seed, a u32) or off for the submits after it; nothing when lora.dropout is 0. */
  setDropout(s: DropoutState): void {
    if (s.active === this.dropState.active && s.seed === this.dropState.seed) return;
    this.dropState = { ...s };
    for (const d of this.drops) d.update(this.dropState);
  }

  private planDrop(a: DropoutArgs): KernelPlan {
    const d = planDropout(this.device, { ...a, ...this.dropState });
    this.drops.push(d);
    return d;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}

/** The mask stream of adapted weight `base` ('layers.3.wq'): layer·7 + the target's index. */
function dropoutStream(base: string, targets: readonly string[]): number {
  const m = /^layers\.(\d+)\.(\w+)$/.exec(base);
  const t = m ? targets.indexOf(m[2]!) : -1;
  if (!m || t < 0) throw new Error(`LoRA dropout: no mask stream for '${base}'`);
  return Number(m[1]) * targets.length + t;
}
