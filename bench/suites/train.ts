// Training-step benchmark: one full step of the student (forward, fused loss, backward, grad norm, AdamW) as
// recorded by GpuModel, timed inside one compute pass; tokens/s next to PyTorch eager fp32 on the same model.
// Also reports dispatches per step and the share of wall time outside GPU work (submit + completion latency).
import { GpuModel } from '../../src/model/gpu-model.ts';
import { presetConfig } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { timeDispatches } from '../../src/gpu/timing.ts';
import { Rng } from '../../src/util/rng.ts';
import { withBaseline, type BenchRow, type Suite } from './common.ts';

/** Shape string: preset:B:T, e.g. base-17m:32:256. */
export const trainSuite: Suite = {
  name: 'train',
  presets: { local: 'tiny-1m:2:32', gpu: 'base-17m:32:256' },
  async run({ device, shapes, iters, baseline, log }) {
    const rows: BenchRow[] = [];
    for (const shape of shapes) {
      const [preset, b, t] = shape.split(':');
      const B = Number(b), T = Number(t);
      if (!preset || !(B > 0) || !(T > 0)) throw new Error(`bad train shape '${shape}': expected preset:B:T`);
      const config = presetConfig(preset, { maxSeqLen: Math.max(T, presetConfig(preset).maxSeqLen) });
      const model = new GpuModel(device, config, B, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
      model.uploadParams(initParams(config, 1));
      const rng = new Rng(1);
      const ids = Uint32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
      const labels = Uint32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
      model.setBatch({ ids, labels, weights: new Float32Array(B * T).fill(1) });
      const first = await model.run({ update: { lr: 1e-4, step: 1 } });
      const t0 = await timeDispatches(device, model.stepDispatches(), iters);
      const row = withBaseline({
        suite: 'train', kernel: 'train_step', variant: `${model.dispatchesPerStep} dispatches`, shape, ms: t0.ms, timing: t0.method,
        rate: (B * T) / (t0.ms / 1000) / 1e3, unit: 'ktok/s',
        checkOk: Number.isFinite(first.loss) && Math.abs(first.loss - Math.log(config.vocabSize)) < 0.5,
        checkDetail: `first-step loss ${first.loss.toFixed(3)} vs ln V = ${Math.log(config.vocabSize).toFixed(3)}; outside-GPU share ${(1 - t0.ms / t0.wallMs).toFixed(3)}`,
      }, baseline);
      rows.push(row);
      log(row);
      model.destroy();
    }
    return rows;
  },
};
