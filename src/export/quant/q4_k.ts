// GGML Q4_K (ggml type 12): super-blocks of 256 values, 144 bytes each:
//   d (f16), dmin (f16), scales[12] (eight 6-bit scales and eight 6-bit mins, packed below), qs[128] (4-bit quants).
//   Sub-block j (values 32j..32j+31) has scale sc_j and min m_j: value = d·sc_j·q − dmin·m_j.
//   scales[]: for j < 4, byte j = sc_j (low 6 bits), byte j+4 = m_j; for j ≥ 4, byte j+4 = sc_j low 4 | m_j low 4 << 4,
//   and the top 2 bits of sc_j / m_j sit in bits 6..7 of byte j−4 / byte j.
//   qs[]: per 64 values, 32 bytes: byte l = value l (low nibble) | value l + 32 (high nibble).
// Quantizer (llama.cpp quantize_row_q4_K_ref, used by llama-quantize without an importance matrix): each sub-block
// gets a scale and min by make_qkx2_quants (a search of 21 candidate scales minimising the weighted squared error,
// weights av|x| + |x|), the scales and mins are quantized to 6 bits against their maxima, then every value is
// re-quantized with the stored (rounded) scale and min.
import { blockCount, getF16, nearestInt, putF16 } from './f32.ts';

const fr = Math.fround; // local: an imported alias is not inlined (6× slower)

export const QK_K = 256;
export const Q4_K_BYTES = 144;

/** make_qkx2_quants: levels L[0..n) in [0, nmax], returns [scale, −min] with value ≈ scale·L + min. */
export function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number,
  rmin: number, rdelta: number, nstep: number,
): [scale: number, theMin: number] {
  let min = x[xo]!, max = x[xo]!;
  let sumW = w[0]!, sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(v - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - v);
    bestError = fr(bestError + fr(w[i]! * fr(diff * diff)));
  }
  const aux = new Uint8Array(n);
  const rd = fr(rdelta);
  for (let is = 0; is <= nstep; is++) {
    // (max − min) with the current min: llama.cpp's search moves `min` when a candidate improves.
    iscale = fr(fr(fr(rmin + fr(rd * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(v - min)))));
      aux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * v));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * aux[i]!) + thisMin) - x[xo + i]!);
        cur = fr(cur + fr(w[i]! * fr(diff * diff)));
      }
      if (cur < bestError) {
        L.set(aux, lo);
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** Sub-block j's 6-bit scale and min from the 12 packed bytes at b[o..] (ggml get_scale_min_k4). */
export function scaleMinK4(j: number, b: Uint8Array, o: number): [sc: number, m: number] {
  if (j < 4) return [b[o + j]! & 63, b[o + j + 4]! & 63];
  return [(b[o + j + 4]! & 15) | ((b[o + j - 4]! >> 6) << 4), (b[o + j + 4]! >> 4) | ((b[o + j]! >> 6) << 4)];
}

export function quantizeQ4_K(x: Float32Array): Uint8Array {
  const nb = blockCount('Q4_K', x.length, QK_K);
  const out = new Uint8Array(nb * Q4_K_BYTES);
  const L = new Uint8Array(QK_K), w = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K, o = i * Q4_K_BYTES;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = base + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + l]! * x[xo + l]!));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[xo + l]!));
      const [s, m] = makeQkx2Quants(32, 15, x, xo, w, L, 32 * j, -1, 0.1, 20);
      scales[j] = s; mins[j] = m;
      if (s > maxScale) maxScale = s;
      if (m > maxMin) maxMin = m;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const sc = o + 4;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        out[sc + j] = ls;
        out[sc + j + 4] = lm;
      } else {
        out[sc + j + 4] = (ls & 15) | ((lm & 15) << 4);
        out[sc + j - 4] = out[sc + j - 4]! | ((ls >> 4) << 6);
        out[sc + j] = out[sc + j]! | ((lm >> 4) << 6);
      }
    }
    putF16(out, o, fr(maxScale / 63));
    putF16(out, o + 2, fr(maxMin / 63));
    const d0 = getF16(out, o), dmin0 = getF16(out, o + 2);
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMinK4(j, out, sc);
      const d = fr(d0 * s);
      if (!d) continue;
      const dm = fr(dmin0 * m);
      for (let ii = 0; ii < 32; ii++) {
        L[32 * j + ii] = Math.max(0, Math.min(15, nearestInt(fr(fr(x[base + 32 * j + ii]! + dm) / d))));
      }
    }
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + l + 32]! << 4);
    }
  }
  return out;
}

export function dequantizeQ4_K(b: Uint8Array, n: number): Float32Array {
  const nb = blockCount('Q4_K', n, QK_K);
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_K_BYTES, d = getF16(b, o), dmin = getF16(b, o + 2), base = i * QK_K;
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMinK4(j, b, o + 4);
      const d1 = fr(d * s), m1 = fr(dmin * m);
      const shift = (j & 1) * 4, qo = o + 16 + 32 * (j >> 1);
      for (let l = 0; l < 32; l++) y[base + 32 * j + l] = fr(fr(d1 * ((b[qo + l]! >> shift) & 15)) - m1);
    }
  }
  return y;
}
