// Non-blocking readback of the optimizer's stats buffer [norm, clipScale, nonFinite, sumSq], so the trainer
// learns about skipped (non-finite) steps and can log the gradient norm without ever waiting for the GPU.
//
// How the trainer uses it, once per step s:
//   queue.submit([stepEncoder.finish()]);   // zero grads … forward/backward … gradnorm … adamw
//   reader.capture(s);                       // copy stats → a free MAP_READ buffer, mapAsync started, not awaited
//   for (const st of reader.poll()) {        // steps whose copy has landed since the last poll (s−1, s−2, …)
//     if (st.nonFinite) report(`step ${st.step} skipped: non-finite gradient`); else logNorm(st.step, st.norm);
//   }
//   …then yield to the event loop as the trainer does anyway (the worker's message loop, a setTimeout(0)).
// The GPU already skipped the update itself (p, m, v untouched), so nothing waits on this report. A flagged
// step is normally seen at the next step's poll, as soon as the GPU has finished it (one step of latency).
// Skipped steps still advanced the host's step count t; the trainer may decrement t for later steps when it
// learns of the skip (t only enters the bias corrections). At the end, `await drain()` collects the rest.
import { STATS_FLOATS } from './optim.ts';

export interface StepStats {
  step: number;
  norm: number;
  clipScale: number;
  nonFinite: boolean;
  sumSq: number;
}

export class StatsReader {
  private readonly free: GPUBuffer[] = [];
  private readonly all: GPUBuffer[] = [];
  private readonly done: StepStats[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Copies whose mapAsync failed (device lost or destroyed). */
  failed = 0;

  /**
   * @param stats the stats buffer planGradNorm writes (needs COPY_SRC usage)
   * @param ringSize MAP_READ buffers made up front; when all are in flight a new one is added (no step is lost)
   */
  constructor(private readonly device: GPUDevice, private readonly stats: GPUBuffer, ringSize = 3) {
    if (!(stats.usage & GPUBufferUsage.COPY_SRC)) throw new Error('StatsReader: the stats buffer needs COPY_SRC usage');
    if (stats.size < STATS_FLOATS * 4) throw new Error(`StatsReader: the stats buffer has ${stats.size} bytes, needs ${STATS_FLOATS * 4}`);
    for (let i = 0; i < ringSize; i++) this.free.push(this.makeBuffer());
  }

  private makeBuffer(): GPUBuffer {
    const b = this.device.createBuffer({ label: 'stats readback', size: STATS_FLOATS * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.all.push(b);
    return b;
  }

  /** Call right after submitting step `step`: queues a copy of the stats buffer and starts its map. Never waits. */
  capture(step: number): void {
    const buf = this.free.pop() ?? this.makeBuffer();
    const enc = this.device.createCommandEncoder({ label: `stats readback step ${step}` });
    enc.copyBufferToBuffer(this.stats, 0, buf, 0, STATS_FLOATS * 4);
    this.device.queue.submit([enc.finish()]);
    const p: Promise<void> = buf.mapAsync(GPUMapMode.READ).then(
      () => {
        const [norm, clipScale, flag, sumSq] = new Float32Array(buf.getMappedRange().slice(0));
        buf.unmap();
        this.free.push(buf);
        this.done.push({ step, norm: norm!, clipScale: clipScale!, nonFinite: flag !== 0, sumSq: sumSq! });
      },
      () => { this.failed++; },
    ).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Stats of captured steps that completed since the last poll, in step order. Synchronous. */
  poll(): StepStats[] {
    return this.done.splice(0).sort((a, b) => a.step - b.step);
  }

  /** Captures not yet landed. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Waits for every capture (end of training, tests), then polls. Not for use inside a step. */
  async drain(): Promise<StepStats[]> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    return this.poll();
  }

  /** Destroys the readback buffers (after drain). */
  destroy(): void {
    for (const b of this.all) b.destroy();
    this.all.length = 0;
    this.free.length = 0;
  }
}
