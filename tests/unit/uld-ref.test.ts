// The ULD loss CPU reference: hand-computed values (V = 3, K = 2), the teacher row helper, the configuration errors,
// the gradient against central finite differences of its own forward (odd shapes, τ ≠ 1, padding), and losses and
// gradients against an independent torch implementation (autograd through torch.sort) in .venv-torch.
import { describe, expect, it } from 'vitest';
import { uldLossRef, uldOrder, uldRowRef, uldTeacherRow, ULD_KMAX, type UldLossRefArgs } from '../../src/kernels/loss/uld.ref.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

describe('uldLossRef by hand', () => {
  // p = [0.2, 0.5, 0.3] (z = τ·ln p), q = [0.6, 0.1]: sorted p = 0.5 (col 1), 0.3 (col 2), then 0.2 (col 0) in the tail.
  // ULD = |0.5 − 0.6| + |0.3 − 0.1| + 0.2 = 0.5; g = [1, −1, +1], G = 0.2 − 0.5 + 0.3 = 0, ∂ULD/∂z = p·(g − G)/τ.
  const pRow = [0.2, 0.5, 0.3];
  for (const tau of [1, 2]) {
    it(`V = 3, K = 2, τ = ${tau}, a padding column, weights and scale`, () => {
      const z = [...pRow.map((p) => tau * Math.log(p) + 4), Number.NaN]; // a shift does not change p
      const r = uldLossRef({ N: 2, V: 4, realVocab: 3, K: 2, temperature: tau, logits: [...z, ...z], teacher: [0.6, 0.1, 0.6, 0.1], weights: [1.5, 0], scale: 0.4 });
      expect(r.losses[0]).toBeCloseTo(1.5 * 0.5, 14);
      expect(r.losses[1]).toBe(0);
      [0.2, -0.5, 0.3, 0].forEach((d, j) => expect(r.grad[j]).toBeCloseTo((0.4 * 1.5 * d) / tau, 14));
      expect([...r.grad.subarray(4)]).toEqual([0, 0, 0, 0]);
    });
  }

  it('equals Σ_{i<K} |p_(i) − q_i| + 1 − Σ_{i<K} p_(i); a zero teacher gives 1; K = V has no tail', () => {
    const rng = new Rng(3);
    const z = Float64Array.from(rng.uniformArray(9, -2, 2));
    const q = uldTeacherRow([-0.5, -1.2, -3, -2.2], 1.3, 5);
    const { uld } = uldRowRef(z, q, 5, 1.3);
    const max = Math.max(...z);
    const e = Array.from(z, (x) => Math.exp((x - max) / 1.3));
    const p = e.map((v) => v / e.reduce((a, b) => a + b, 0)).sort((a, b) => b - a);
    let other = 1;
    for (let i = 0; i < 5; i++) other += Math.abs(p[i]! - q[i]!) - p[i]!;
    expect(uld).toBeCloseTo(other, 14);
    expect(uldRowRef(z, new Float64Array(5), 5, 1.3).uld).toBeCloseTo(1, 14);
    // K = V, q = the student's own sorted p: 0 loss, 0 gradient (s = 0 everywhere, G = 0).
    const self = uldRowRef([0, 1, 2], uldTeacherRow([0, 1, 2], 1), 3, 1);
    expect(self.uld).toBeCloseTo(0, 15);
    self.dz.forEach((d) => expect(Math.abs(d)).toBeLessThan(1e-15));
  });

  it('orders ties by the lower column first', () => {
    expect(uldOrder([0.1, 0.3, 0.3, 0.2, 0.3])).toEqual([1, 2, 4, 3, 0]);
    // Tied columns 1 and 2 at the K = 1 boundary: column 1 is picked (sign term), column 2 is in the tail.
    const r = uldRowRef([0, 1, 1], [0.9], 1, 1);
    const e = Math.E;
    const p = [1 / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)];
    expect(r.uld).toBeCloseTo(0.9 - p[1]! + p[0]! + p[2]!, 14);
    const G = -p[1]! + p[0]! + p[2]!;
    [p[0]! * (1 - G), p[1]! * (-1 - G), p[2]! * (1 - G)].forEach((d, j) => expect(r.dz[j]).toBeCloseTo(d, 14));
  });

  it('uldTeacherRow: softmax(lp / τ) over the k entries, sorted descending, zero-padded to K', () => {
    const r = uldTeacherRow([Math.log(0.1), Math.log(0.6), Math.log(0.2)], 1, 5);
    [0.6 / 0.9, 0.2 / 0.9, 0.1 / 0.9, 0, 0].forEach((v, i) => expect(r[i]).toBeCloseTo(v, 14));
    const s = [0.1, 0.6, 0.2].map(Math.sqrt);
    const sum = s[0]! + s[1]! + s[2]!;
    const r2 = uldTeacherRow([Math.log(0.1), Math.log(0.6), Math.log(0.2)], 2);
    [s[1]! / sum, s[2]! / sum, s[0]! / sum].forEach((v, i) => expect(r2[i]).toBeCloseTo(v, 14));
    expect(r2.length).toBe(3);
    expect([...uldTeacherRow([-1, Number.NEGATIVE_INFINITY], 1, 3)]).toEqual([1, 0, 0]);
    expect(() => uldTeacherRow([-1, -2, -3], 1, 2)).toThrow(/3 logprobs do not fit in K = 2/);
    expect(() => uldTeacherRow([-1], 0)).toThrow(/temperature must be > 0, got 0/);
  });

  it('rejects K > Vr, K > KMAX, τ ≤ 0, realVocab > V and short inputs', () => {
    const a: UldLossRefArgs = { N: 1, V: 4, realVocab: 3, K: 2, temperature: 1, logits: [0, 0, 0, 0], teacher: [0, 0], weights: [1], scale: 1 };
    expect(() => uldLossRef(a)).not.toThrow();
    expect(() => uldLossRef({ ...a, K: 4, teacher: [0, 0, 0, 0] })).toThrow(/uldLossRef: K = 4 is larger than the real vocabulary Vr = 3/);
    expect(() => uldLossRef({ ...a, V: 300, realVocab: 300, K: ULD_KMAX + 1, logits: new Float64Array(300), teacher: new Float64Array(257) }))
      .toThrow(/K = 257 is over the kernel's maximum of 256/);
    expect(() => uldLossRef({ ...a, temperature: 0 })).toThrow(/temperature must be > 0, got 0/);
    expect(() => uldLossRef({ ...a, realVocab: 5 })).toThrow(/realVocab 5 must be an integer in \[1, V = 4\]/);
    expect(() => uldLossRef({ ...a, teacher: [0] })).toThrow(/teacher has 1 elements, needs N·K = 1·2/);
  });
});

/** A batch with padding (NaN), a masked row, a zero teacher, a short teacher (k < K) and continuous logits. */
function batch(seed: number, N: number, V: number, Vr: number, K: number, tau: number): UldLossRefArgs {
  const rng = new Rng(seed);
  const logits = Float64Array.from(rng.uniformArray(N * V, -3, 3));
  const teacher = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    logits.fill(Number.NaN, n * V + Vr, (n + 1) * V);
    const k = n === 3 ? Math.min(2, K) : K;
    teacher.set(uldTeacherRow(Array.from(rng.uniformArray(k, -4, 0)), tau, K), n * K);
  }
  teacher.fill(0, 2 * K, 3 * K);
  const weights = [0.7, 0, 1.3, 1, 0.9].slice(0, N);
  logits.fill(Number.NaN, V, 2 * V); // the masked row is never read
  return { N, V, realVocab: Vr, K, temperature: tau, logits, teacher, weights, scale: 0.37 };
}

describe('uldLossRef gradient vs central finite differences', () => {
  it.each([[5, 13, 11, 4, 1.7], [5, 9, 9, 9, 0.7], [4, 8, 7, 1, 2.3]] as const)('N=%d V=%d Vr=%d K=%d τ=%d', (N, V, Vr, K, tau) => {
    const a = batch(17 + K, N, V, Vr, K, tau);
    const { grad } = uldLossRef(a);
    const total = (logits: Float64Array) => uldLossRef({ ...a, logits }).losses.reduce((s, l) => s + a.scale * l, 0);
    const z = Float64Array.from(a.logits as Float64Array);
    const eps = 1e-6;
    let checked = 0;
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < V; j++) {
        const i = n * V + j;
        if (n === 1 || j >= Vr) { expect(grad[i]).toBe(0); continue; } // masked row, padding
        const zp = z.slice();
        const zm = z.slice();
        zp[i]! += eps;
        zm[i]! -= eps;
        const fd = (total(zp) - total(zm)) / (2 * eps);
        expect(Math.abs(fd - grad[i]!), `grad[${i}] = ${grad[i]} vs fd ${fd}`).toBeLessThan(1e-8 + 1e-6 * Math.abs(grad[i]!));
        checked++;
      }
    }
    expect(checked).toBe((N - 1) * Vr);
  });
});

// An independent ULD in torch: p = softmax(z / τ), stable descending sort, L1 against the zero-padded teacher,
// autograd through the sort and the softmax, in f64.
const TORCH_ULD = `
import json, sys, torch
a = json.load(sys.stdin)
N, V, Vr, K, tau, scale = a['N'], a['V'], a['Vr'], a['K'], a['tau'], a['scale']
z = torch.tensor(a['logits'], dtype=torch.float64).reshape(N, V).requires_grad_(True)
q = torch.tensor(a['teacher'], dtype=torch.float64).reshape(N, K)
w = a['weights']
losses, total = [], torch.zeros((), dtype=torch.float64)
for n in range(N):
    if w[n] == 0:
        losses.append(0.0)
        continue
    p = torch.softmax(z[n, :Vr] / tau, dim=0)
    s = torch.sort(p, descending=True, stable=True).values
    qpad = torch.zeros(Vr, dtype=torch.float64)
    qpad[:K] = q[n]
    uld = (s - qpad).abs().sum()
    losses.append(w[n] * uld.item())
    total = total + scale * w[n] * uld
total.backward()
print(json.dumps({'losses': losses, 'grad': z.grad.reshape(-1).tolist()}))
`;

describe('uldLossRef vs torch (autograd through torch.sort)', () => {
  it('the same losses and gradients on a batch with padding, a masked row, a zero teacher, ties and τ ≠ 1', () => {
    const [N, V, Vr, K, tau] = [5, 13, 11, 4, 1.7];
    const a = batch(29, N, V, Vr, K, tau);
    const logits = Float64Array.from(a.logits as Float64Array);
    for (let n = 0; n < N; n++) for (let j = Vr; j < V; j++) logits[n * V + j] = 1e3; // JSON has no NaN; never read
    for (let j = 0; j < V; j++) logits[V + j] = 1e3;
    for (const j of [0, 3, 5]) logits[4 * V + j] = logits[4 * V + 7]!; // row 4: four tied logits
    const args = { ...a, logits };
    const ref = uldLossRef(args);
    const t = runPythonJson<{ losses: number[]; grad: number[] }>(torchPython(), TORCH_ULD, {
      N, V, Vr, K, tau, scale: a.scale, logits: [...logits], teacher: Array.from(a.teacher), weights: Array.from(a.weights),
    });
    const close = (got: number, want: number) => Math.abs(got - want) <= 1e-12 + 1e-9 * Math.abs(want);
    ref.losses.forEach((l, n) => expect(close(l, t.losses[n]!), `loss ${n}: ${l} vs torch ${t.losses[n]}`).toBe(true));
    ref.grad.forEach((g, i) => expect(close(g, t.grad[i]!), `grad ${i}: ${g} vs torch ${t.grad[i]}`).toBe(true));
    expect(ref.grad.some((g) => Math.abs(g) > 1e-3)).toBe(true);
  }, 120_000); // starting Python with torch takes seconds
});
