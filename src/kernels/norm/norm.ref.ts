// CPU reference for RMSNorm and LayerNorm, forward and backward, in f64: the oracle for norm.wgsl kernels
// and the plain statement of what they compute. Rows n < N of width C; parameter gradients are returned
// as this batch's contribution (the kernels ADD it onto their dweight/dbias buffers).

export interface RmsNormForwardRef { y: Float64Array; rstd: Float64Array }
export interface RmsNormBackwardRef { dx: Float64Array; dweight: Float64Array }
export interface LayerNormForwardRef { y: Float64Array; mean: Float64Array; rstd: Float64Array }
export interface LayerNormBackwardRef { dx: Float64Array; dweight: Float64Array; dbias: Float64Array }

function checkLen(fn: string, name: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new Error(`${fn}: ${name} has ${a.length} elements, expected ${n}`);
}

/** y = x / sqrt(mean(x²) + eps) · weight; rstd = 1/sqrt(mean(x²) + eps). x (N, C), weight (C). */
export function rmsnormForwardRef(x: ArrayLike<number>, weight: ArrayLike<number>, N: number, C: number, eps: number): RmsNormForwardRef {
  checkLen('rmsnormForwardRef', 'x', x, N * C);
  checkLen('rmsnormForwardRef', 'weight', weight, C);
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c]! * x[n * C + c]!;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c]! * r * weight[c]!;
  }
  return { y, rstd };
}

/** dx_j = r·(dy_j·w_j − x_j·r²·(1/C)·Σ_i dy_i·w_i·x_i); dweight_c = Σ_n dy[n,c]·x[n,c]·r_n. */
export function rmsnormBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, weight: ArrayLike<number>, N: number, C: number, eps: number): RmsNormBackwardRef {
  checkLen('rmsnormBackwardRef', 'dy', dy, N * C);
  const { rstd } = rmsnormForwardRef(x, weight, N, C, eps);
  const dx = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let s = 0;
    for (let c = 0; c < C; c++) s += dy[n * C + c]! * weight[c]! * x[n * C + c]!;
    const k = (r * r * s) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = r * (dy[i]! * weight[c]! - x[i]! * k);
      dweight[c]! += dy[i]! * x[i]! * r;
    }
  }
  return { dx, dweight };
}

/** y = (x − mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps) with the biased variance. */
export function layernormForwardRef(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, N: number, C: number, eps: number): LayerNormForwardRef {
  checkLen('layernormForwardRef', 'x', x, N * C);
  checkLen('layernormForwardRef', 'weight', weight, C);
  checkLen('layernormForwardRef', 'bias', bias, C);
  const y = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c]!;
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c]! - m) ** 2;
    const r = 1 / Math.sqrt(v / C + eps);
    mean[n] = m;
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c]! - m) * r * weight[c]! + bias[c]!;
  }
  return { y, mean, rstd };
}

/** dx_i = r·(dnorm_i − mean(dnorm) − norm_i·mean(dnorm·norm)), dnorm = dy·w; dweight = Σ dy·norm; dbias = Σ dy. */
export function layernormBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, weight: ArrayLike<number>, N: number, C: number, eps: number): LayerNormBackwardRef {
  checkLen('layernormBackwardRef', 'dy', dy, N * C);
  const { mean, rstd } = layernormForwardRef(x, weight, new Float64Array(C), N, C, eps);
  const dx = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  const dbias = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const m = mean[n]!;
    const r = rstd[n]!;
    let sd = 0;
    let sdn = 0;
    for (let c = 0; c < C; c++) {
      const dnorm = dy[n * C + c]! * weight[c]!;
      sd += dnorm;
      sdn += dnorm * (x[n * C + c]! - m) * r;
    }
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const norm = (x[i]! - m) * r;
      dx[i] = r * (dy[i]! * weight[c]! - sd / C - norm * (sdn / C));
      dweight[c]! += dy[i]! * norm;
      dbias[c]! += dy[i]!;
    }
  }
  return { dx, dweight, dbias };
}
