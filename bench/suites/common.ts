// What every benchmark suite shares: a row format, shape parsing, and pairing with a PyTorch baseline row.

export interface BenchRow {
  suite: string;
  kernel: string;
  variant: string;
  shape: string;
  /** ms per run (GPU timestamps when available). */
  ms: number;
  timing: string;
  /** Throughput in the suite's unit: TFLOP/s (compute-bound) or GB/s (memory-bound). */
  rate: number;
  unit: 'TFLOP/s' | 'GB/s' | 'ktok/s';
  /** Spot check against the CPU reference passed. */
  checkOk: boolean;
  checkDetail: string;
  torchMs?: number;
  /** torch ms ÷ our ms: > 1 means we are faster. */
  ratioVsTorch?: number;
}

export interface SuiteContext {
  device: GPUDevice;
  shapes: string[];
  iters: number;
  variants?: string[];
  /** PyTorch rows for the same shapes, keyed by shape string. */
  baseline: Map<string, { ms: number }>;
  log: (row: BenchRow) => void;
}

export interface Suite {
  name: string;
  /** Default shapes per preset: 'local' fits SwiftShader, 'gpu' is what the GPU machine runs. */
  presets: { local: string; gpu: string };
  run(ctx: SuiteContext): Promise<BenchRow[]>;
}

export function parseDims(spec: string, n: number, what: string): number[] {
  const d = spec.split('x').map(Number);
  if (d.length !== n || !d.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`bad ${what} shape '${spec}': expected ${n} positive integers joined by x`);
  return d;
}

export function withBaseline(row: Omit<BenchRow, 'torchMs' | 'ratioVsTorch'>, baseline: Map<string, { ms: number }>): BenchRow {
  const t = baseline.get(row.shape);
  return t ? { ...row, torchMs: t.ms, ratioVsTorch: t.ms / row.ms } : row;
}

export function formatRow(r: BenchRow): string {
  const rate = r.unit === 'TFLOP/s' && r.rate < 0.1 ? `${(r.rate * 1e3).toFixed(2)} GFLOP/s` : `${r.rate.toFixed(2)} ${r.unit}`;
  return `${`${r.kernel}_${r.variant}`.padEnd(22)} ${r.shape.padEnd(20)} ${r.ms.toFixed(3).padStart(10)} ms ${rate.padStart(16)} (${r.timing})` +
    (r.ratioVsTorch !== undefined ? `  torch ${r.torchMs!.toFixed(3)} ms  ratio ${r.ratioVsTorch.toFixed(3)}` : '') +
    (r.checkOk ? '' : `  CHECK FAILED: ${r.checkDetail}`);
}
