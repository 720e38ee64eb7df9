// A policy and its frozen reference, as DPO/IPO (pair-trainer.ts) and RL (rl-trainer.ts) train against one: both CE-only
// GpuModels of B rows × T. Full training: the policy and the reference each hold `init` (the reference never trains).
// LoRA: `init` is the frozen base, held once — the policy trains adapters (initLora) on it, and the reference is the
// same base with zero adapters (B = 0: exactly the base; no dropout plans), so it costs no second copy of the weights.
import { GpuModel } from '../model/gpu-model.ts';
import type { ModelConfig } from '../model/config.ts';
import type { BaseSource } from '../model/base-layout.ts';
import { initLora } from '../model/lora.ts';
import { optimizerOf, type TrainConfig } from './config.ts';
import { CE_ONLY } from './step-trainer.ts';

/** Builds both (freeing what was built if a step fails); `who` names the trainer in the error for a non-slab `init`. */
export function policyAndReference(device: GPUDevice, model: ModelConfig, train: TrainConfig, B: number, init: BaseSource, who: string): { policy: GpuModel; reference: GpuModel } {
  const opt = optimizerOf(train);
  const lora = train.lora, recompute = train.recompute ? { recompute: true } : {};
  if (!lora && !(init instanceof Float32Array)) throw new Error(`${who}: full training starts from a whole f32 slab`);
  const built: GpuModel[] = [];
  try {
    const policy = new GpuModel(device, model, B, train.seqLen, CE_ONLY, opt, { ...(lora ? { lora } : {}), ...recompute });
    built.push(policy);
    let reference: GpuModel;
    if (lora) {
      policy.uploadBase(init);
      policy.uploadAdapters(initLora(model, lora, train.seed));
      reference = new GpuModel(device, model, B, train.seqLen, CE_ONLY, opt, { lora: { ...lora, dropout: 0 }, sharedBase: policy.params, ...recompute });
      built.push(reference);
      reference.uploadAdapters(new Float32Array(reference.stateSizes.params));
    } else {
      policy.uploadParams(init as Float32Array);
      reference = new GpuModel(device, model, B, train.seqLen, CE_ONLY, opt, recompute);
      built.push(reference);
      reference.uploadParams(init as Float32Array);
    }
    return { policy, reference };
  } catch (e) {
    for (const b of built) b.destroy();
    throw e;
  }
}
