import { describe, expect, it } from 'vitest';
import { matmulAbsRef, matmulRef, matmulRefAt } from '../../src/kernels/matmul/matmul.ref.ts';
import { Rng } from '../../src/util/rng.ts';

describe('matmulRef', () => {
  it('computes a hand-checked product', () => {
    // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
    const c = matmulRef(new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([7, 8, 9, 10, 11, 12]), 2, 2, 3);
    expect([...c]).toEqual([58, 64, 139, 154]);
  });
  it('agrees with the element-wise form and with identity', () => {
    const rng = new Rng(3);
    const [M, N, K] = [5, 4, 6];
    const a = rng.uniformArray(M * K);
    const b = rng.uniformArray(K * N);
    const c = matmulRef(a, b, M, N, K);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expect(c[m * N + n]).toBeCloseTo(matmulRefAt(a, b, N, K, m, n), 6);
    const eye = new Float32Array(K * K);
    for (let i = 0; i < K; i++) eye[i * K + i] = 1;
    expect([...matmulRef(a, eye, M, K, K)]).toEqual([...a]);
  });
  it('gives the absolute-value scale', () => {
    const s = matmulAbsRef(new Float32Array([1, -2]), new Float32Array([-3, 4]), 1, 1, 2);
    expect(s[0]).toBe(11);
  });
  it('rejects mismatched sizes', () => {
    expect(() => matmulRef(new Float32Array(5), new Float32Array(6), 2, 2, 3)).toThrow(/A has 5 elements, expected M·K = 2·3/);
  });
});
