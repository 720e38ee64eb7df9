// CPU reference for the token embedding (Llama: no position embedding), in f64: the oracle for the embedding
// kernels. ids (N) = (B, T), wte (V, C), x (N, C). The backward returns this batch's dwte contribution
// (the kernel ADDS it onto its dwte buffer).

function check(fn: string, ids: ArrayLike<number>, V: number): void {
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`${fn}: token id ${id} at position ${n} is out of range [0, ${V})`);
  }
}

/** x[n, :] = wte[ids[n], :]. */
export function embeddingForwardRef(ids: ArrayLike<number>, wte: ArrayLike<number>, V: number, C: number): Float64Array {
  if (wte.length !== V * C) throw new Error(`embeddingForwardRef: wte has ${wte.length} elements, expected V·C = ${V * C}`);
  check('embeddingForwardRef', ids, V);
  const x = new Float64Array(ids.length * C);
  for (let n = 0; n < ids.length; n++) for (let c = 0; c < C; c++) x[n * C + c] = wte[ids[n]! * C + c]!;
  return x;
}

/** dwte[v, :] = Σ_{n: ids[n] = v} dx[n, :]. */
export function embeddingBackwardRef(ids: ArrayLike<number>, dx: ArrayLike<number>, V: number, C: number): Float64Array {
  if (dx.length !== ids.length * C) throw new Error(`embeddingBackwardRef: dx has ${dx.length} elements, expected N·C = ${ids.length * C}`);
  check('embeddingBackwardRef', ids, V);
  const dwte = new Float64Array(V * C);
  for (let n = 0; n < ids.length; n++) for (let c = 0; c < C; c++) dwte[ids[n]! * C + c]! += dx[n * C + c]!;
  return dwte;
}
