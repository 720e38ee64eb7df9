// Fused classifier loss benchmark: forward KL against a dense teacher, loss + gradient in place, one pass per
// row (the PyTorch baseline is eager log_softmax + kl_div + backward). Memory-bound: the rate is GB/s of the
// minimum traffic (read student and teacher logits, write the gradient), to compare with the GPU's bandwidth.
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { planClassifierLoss } from '../../src/kernels/loss/loss.ts';
import { classifierLossRef } from '../../src/kernels/loss/loss.ref.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { timeDispatches } from '../../src/gpu/timing.ts';
import { parseDims, withBaseline, type BenchRow, type Suite } from './common.ts';

export const lossSuite: Suite = {
  name: 'loss',
  presets: { local: '64x1000,17x4099', gpu: '8192x32768,4096x8192' },
  async run({ device, shapes, iters, baseline, log }) {
    const rows: BenchRow[] = [];
    for (const shape of shapes) {
      const [N, V] = parseDims(shape, 2, 'loss NxV') as [number, number];
      const rng = new Rng(N + V);
      // Generate row by row so the host never holds more than one [N, V] array at a time.
      const student = createStorage(device, N * V);
      const teacher = createStorage(device, N * V);
      const rowBuf = new Float32Array(V);
      const sample = [0, Math.floor(N / 2), N - 1];
      const kept = new Map<number, { s: Float32Array; t: Float32Array }>();
      for (const [buf, which] of [[student, 's'], [teacher, 't']] as const) {
        for (let n = 0; n < N; n++) {
          for (let i = 0; i < V; i++) rowBuf[i] = 3 * rng.normal();
          device.queue.writeBuffer(buf, n * V * 4, rowBuf);
          if (sample.includes(n)) {
            const e = kept.get(n) ?? { s: new Float32Array(V), t: new Float32Array(V) };
            e[which].set(rowBuf);
            kept.set(n, e);
          }
        }
      }
      const weights = createStorage(device, new Float32Array(N).fill(1));
      const losses = createStorage(device, N * 2);
      const args = {
        N, V, logits: student, weights, losses, teacher: { kind: 'dense' as const, logits: teacher },
        objective: 'fkl' as const, temperature: 1, kdWeight: 1, ceWeight: 0, lossScale: 1 / N,
      };
      const plan = planClassifierLoss(device, args);
      // Check first (the kernel overwrites the logits with the gradient), on the sampled rows.
      submitDispatches(device, plan.dispatches);
      let worst = { ok: true, detail: '' };
      for (const n of sample) {
        const e = kept.get(n)!;
        const dz = await readF32(device, student, V, n * V);
        const ref = classifierLossRef({ N: 1, V, logits: e.s, weights: [1], teacher: { kind: 'dense', logits: e.t }, objective: 'fkl', temperature: 1, kdWeight: 1, ceWeight: 0, lossScale: 1 / N });
        const c = compareArrays(dz, ref.dz, { atol: 1e-9, rtol: 1e-4 });
        if (!c.ok) worst = { ok: false, detail: `row ${n}: ${describeComparison(c)}` };
      }
      const t = await timeDispatches(device, plan.dispatches, iters);
      const row = withBaseline({
        suite: 'loss', kernel: 'loss_fkl_dense', variant: 'fused', shape, ms: t.ms, timing: t.method,
        rate: (3 * N * V * 4) / (t.ms * 1e-3) / 1e9, unit: 'GB/s',
        checkOk: worst.ok, checkDetail: worst.ok ? `rows ${sample.join(', ')} match the CPU reference` : worst.detail,
      }, baseline);
      rows.push(row);
      log(row);
      for (const b of [student, teacher, weights, losses]) b.destroy();
    }
    return rows;
  },
};
