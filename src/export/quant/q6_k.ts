// GGML Q6_K (ggml type 14): super-blocks of 256 values, 210 bytes each: ql[128] (low 4 bits), qh[64] (high 2 bits),
// scales[16] (int8, one per 16 values), d (f16). value = d·scale_{e/16}·(q − 32), q a 6-bit level.
// Where value e (0..255) lives: half h = e/128, r = e mod 128, quarter k = r/32, l = r mod 32:
//   low 4 bits in ql[64h + l + 32·(k mod 2)], low nibble for k < 2, high nibble for k ≥ 2;
//   high 2 bits in qh[32h + l] at bits 2k..2k+1.
// Quantizer (llama.cpp quantize_row_q6_K_ref): each 16-value group's scale from make_qx_quants (weights x², 19
// candidate scales), the scales quantized to int8 against the one of largest magnitude, values re-quantized.
import { blockCount, getF16, nearestInt, putF16 } from './f32.ts';
import { QK_K } from './q4_k.ts';

const fr = Math.fround; // local: an imported alias is not inlined (6× slower)

export const Q6_K_BYTES = 210;
const GROUP_MAX_EPS = fr(1e-15);

/** make_qx_quants with rmse_type 1 (weights x²) and no importance: levels L = l + nmax, returns the scale. */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) { amax = ax; max = x[xo + i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, fr(fr(iscale * v) + 12582912) - 12582912));
    L[lo + i] = l + nmax;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  const tenth = fr(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(tenth * is)) / max);
    sumlx = 0; suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, fr(fr(iscale * v) + 12582912) - 12582912)); // nearest_int
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xo + i]!))));
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const nb = blockCount('Q6_K', x.length, QK_K);
  const out = new Uint8Array(nb * Q6_K_BYTES);
  const L = new Uint8Array(QK_K), scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K, o = i * Q6_K_BYTES, so = o + 192;
    let maxScale = 0, maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, x, base + 16 * ib, L, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbsScale) { maxAbsScale = Math.abs(s); maxScale = s; }
    }
    if (maxAbsScale < GROUP_MAX_EPS) continue; // an all-zero block: every byte 0 (d = +0)
    const iscale = fr(-128 / maxScale);
    putF16(out, o + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) out[so + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    const d0 = getF16(out, o + 208);
    for (let j = 0; j < 16; j++) {
      const d = fr(d0 * ((out[so + j]! << 24) >> 24));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(fr(x[base + 16 * j + ii]! / d)))) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = 128 * h + l;
        const q1 = L[e]!, q2 = L[e + 32]!, q3 = L[e + 64]!, q4 = L[e + 96]!;
        out[o + 64 * h + l] = (q1 & 15) | ((q3 & 15) << 4);
        out[o + 64 * h + l + 32] = (q2 & 15) | ((q4 & 15) << 4);
        out[o + 128 + 32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return out;
}

export function dequantizeQ6_K(b: Uint8Array, n: number): Float32Array {
  const nb = blockCount('Q6_K', n, QK_K);
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BYTES, d = getF16(b, o + 208), base = i * QK_K;
    for (let e = 0; e < QK_K; e++) {
      const h = e >> 7, r = e & 127, k = r >> 5, l = r & 31;
      const low = (b[o + 64 * h + l + 32 * (k & 1)]! >> (4 * (k >> 1))) & 15;
      const high = (b[o + 128 + 32 * h + l]! >> (2 * k)) & 3;
      const sc = (b[o + 192 + (e >> 4)]! << 24) >> 24;
      y[base + e] = fr(fr(d * sc) * ((low | (high << 4)) - 32));
    }
  }
  return y;
}
