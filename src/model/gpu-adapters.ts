// The LoRA adapters of a GpuModel (issue #21): for each adapted linear weight of each layer, its A and B in the
// trained slab (TrainState, laid out by loraLayout), u = x·Aᵀ kept from the forward for dB, and one shared du scratch.
// GpuModel asks for a weight's adapter plans right after that weight's base product (forward: y += s·u·Bᵀ) and right
// after the base dx product of its backward (dx += du·A, dA/dB accumulated); a weight without an adapter gets none.
// The math and its oracle: gpu-lora.ts and lora.ts.
import type { Binding } from '../gpu/dispatch.ts';
import type { KernelPlan } from '../gpu/launch.ts';
import { allocBuffer } from './activations.ts';
import type { ModelConfig } from './config.ts';
import { planLoraBackward, planLoraForward, type LoraLinear, type PlanMatmul } from './gpu-lora.ts';
import { loraLayout, loraScale, type LoraConfig, type LoraLayout } from './lora.ts';
import type { TrainState } from './train-state.ts';

export class GpuAdapters {
  readonly layout: LoraLayout;
  private readonly linears = new Map<string, LoraLinear>();
  private readonly buffers: GPUBuffer[] = [];

  constructor(device: GPUDevice, config: ModelConfig, readonly lora: LoraConfig, N: number, state: TrainState) {
    if (lora.dropout !== 0) throw new Error(`LoRA dropout ${lora.dropout} is not supported on the GPU yet: set dropout to 0`);
    this.layout = loraLayout(config, lora);
    const r = lora.rank, scale = loraScale(lora);
    const du = allocBuffer(device, N * r, 'lora.du');
    this.buffers.push(du);
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

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
