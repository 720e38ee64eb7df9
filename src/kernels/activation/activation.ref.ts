// CPU reference for the element-wise kernels (SiLU, tanh-GELU, SwiGLU, residual add), forward and backward,
// in f64: the oracle for the activation WGSL kernels and the plain statement of what they compute.

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
export const silu = (x: number): number => x * sigmoid(x);
/** d silu / dx = σ(x)·(1 + x·(1 − σ(x))). */
export const siluGrad = (x: number): number => sigmoid(x) * (1 + x * sigmoid(-x));
/** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export const gelu = (x: number): number => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x ** 3)));
export function geluGrad(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x);
}

const map = (x: ArrayLike<number>, f: (v: number, i: number) => number): Float64Array => Float64Array.from(x, f);

function sameLength(fn: string, names: string[], arrays: ArrayLike<number>[]): void {
  for (let i = 1; i < arrays.length; i++) {
    if (arrays[i]!.length !== arrays[0]!.length) {
      throw new Error(`${fn}: ${names[i]} has ${arrays[i]!.length} elements, ${names[0]} has ${arrays[0]!.length}`);
    }
  }
}

export const siluForwardRef = (x: ArrayLike<number>): Float64Array => map(x, silu);
export function siluBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  sameLength('siluBackwardRef', ['x', 'dy'], [x, dy]);
  return map(x, (v, i) => dy[i]! * siluGrad(v));
}

export const geluForwardRef = (x: ArrayLike<number>): Float64Array => map(x, gelu);
export function geluBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  sameLength('geluBackwardRef', ['x', 'dy'], [x, dy]);
  return map(x, (v, i) => dy[i]! * geluGrad(v));
}

/** h = silu(gate) ⊙ up, (N, F) flattened. */
export function swigluForwardRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  sameLength('swigluForwardRef', ['gate', 'up'], [gate, up]);
  return map(gate, (g, i) => silu(g) * up[i]!);
}

/** dgate = dh·up·silu'(gate), dup = dh·silu(gate). */
export function swigluBackwardRef(gate: ArrayLike<number>, up: ArrayLike<number>, dh: ArrayLike<number>): { dgate: Float64Array; dup: Float64Array } {
  sameLength('swigluBackwardRef', ['gate', 'up', 'dh'], [gate, up, dh]);
  return { dgate: map(gate, (g, i) => dh[i]! * up[i]! * siluGrad(g)), dup: map(gate, (g, i) => dh[i]! * silu(g)) };
}

/** out = a + b. (Its backward passes the gradient through to both: da = db = dout.) */
export function residualAddRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  sameLength('residualAddRef', ['a', 'b'], [a, b]);
  return map(a, (v, i) => v + b[i]!);
}
