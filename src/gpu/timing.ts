// GPU timing (benchmarks and the matmul autotuner): `iters` repetitions of a list of dispatches inside ONE compute pass of one submit,
// timed by timestamp queries when the device has them (GPU time), and by wall clock around the submit otherwise.
import { encodeDispatches, type Dispatch } from './dispatch.ts';

export interface Timing {
  /** Milliseconds per repetition. */
  ms: number;
  method: 'timestamp-query' | 'wall-clock';
  /** Wall-clock ms per repetition, submit → onSubmittedWorkDone (includes the ~40 µs round trip / iters). */
  wallMs: number;
}

export async function timeDispatches(device: GPUDevice, dispatches: readonly Dispatch[], iters: number, warmup = 1): Promise<Timing> {
  const useTs = device.features.has('timestamp-query');
  const run = async (n: number, withTs: boolean) => {
    const qs = withTs ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let i = 0; i < n; i++) encodeDispatches(pass, dispatches);
    pass.end();
    let resolve: GPUBuffer | undefined;
    let read: GPUBuffer | undefined;
    if (qs) {
      resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    let gpu = NaN;
    if (read) {
      await read.mapAsync(GPUMapMode.READ);
      const [a, b] = new BigInt64Array(read.getMappedRange());
      gpu = Number(b! - a!) / 1e6;
      read.unmap();
      read.destroy();
      resolve!.destroy();
      qs!.destroy();
    }
    return { wall, gpu };
  };
  if (warmup > 0) await run(warmup, false);
  const r = await run(iters, useTs);
  // Some drivers (SwiftShader among them) return zeros or nonsense for timestamps: fall back to wall clock.
  const tsOk = useTs && Number.isFinite(r.gpu) && r.gpu > 0 && r.gpu <= r.wall * 1.05;
  return { ms: (tsOk ? r.gpu : r.wall) / iters, method: tsOk ? 'timestamp-query' : 'wall-clock', wallMs: r.wall / iters };
}
