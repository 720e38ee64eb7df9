// Quantized weights of the ONNX export (onnx.ts), for transformers.js's `dtype`: every linear layer's weight
// (q/k/v/o, gate/up/down, and an untied lm_head) is stored quantized and applied as
//   fp32  Gemm(x, W, transB = 1)                                     onnx/model.onnx            (dtype 'fp32')
//   q8    Gemm(x, DequantizeLinear(W_int8, scale_row, axis = 0), transB = 1)
//                                                                    onnx/model_quantized.onnx  (dtype 'q8')
//   q4    com.microsoft MatMulNBits(x, B_4bit, scales; K, N, bits = 4, block_size = 32)
//                                                                    onnx/model_q4.onnx         (dtype 'q4')
// (file names: transformers.js's DEFAULT_DTYPE_SUFFIX_MAPPING, '' / '_quantized' / '_q4' after 'model').
// q8 is weight-only int8 (the standard DequantizeLinear op, which every onnxruntime-web backend runs) rather than
// transformers.js' own dynamic quantization (DynamicQuantizeLinear + MatMulInteger): the runtime then computes
// exactly with the dequantized weights our CPU reference (quant/onnx-weights.ts) gives. q4 is the
// MatMulNBits convention of transformers.js' model_q4.onnx files (onnxruntime's 4-bit quantizer, block 32).
// Not quantized: the embedding (a Gather; a tied lm_head shares it, so it stays fp32 too), the norm gains, and, in
// q4, a weight whose K is not a multiple of 32 (it stays an fp32 Gemm).
import type { NamedTensor } from './hf-names.ts';
import { DT_INT8, DT_UINT8, MS_DOMAIN, type GraphBuilder } from './onnx-proto.ts';
import { NBITS_BLOCK, quantizeInt8Rows, quantizeNBits4 } from './quant/onnx-weights.ts';

export type OnnxWeights = 'fp32' | 'q8' | 'q4';
export const ONNX_WEIGHTS: readonly OnnxWeights[] = ['fp32', 'q8', 'q4'];

/** Path of the graph transformers.js loads for each dtype. */
export const ONNX_DTYPE_PATH: Record<OnnxWeights, string> = { fp32: 'onnx/model.onnx', q8: 'onnx/model_quantized.onnx', q4: 'onnx/model_q4.onnx' };

type Linear = (x: string, w: string, bias?: string) => string;
const linears = new WeakMap<GraphBuilder, Linear>();

/** Whether `name` is a weight that a linear layer applies (quantized unless fp32). */
export function isLinearWeight(name: string, tied: boolean): boolean {
  return /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(name) || (name === 'lm_head.weight' && !tied);
}

/** Adds the initializers of `tensors` to `b` in the storage of `mode`, and registers how `b` applies a linear. */
export function addOnnxWeights(b: GraphBuilder, tensors: NamedTensor[], mode: OnnxWeights, tied: boolean): void {
  const apply = new Map<string, (x: string, bias?: string) => string>();
  for (const t of tensors) {
    const [N, K] = t.shape as [number, number];
    if (mode === 'fp32' || !isLinearWeight(t.name, tied) || (mode === 'q4' && K % NBITS_BLOCK !== 0)) {
      b.initF32(t.name, t.shape, t.data);
      continue;
    }
    if (mode === 'q8') {
      const { q, scales } = quantizeInt8Rows(t.data, N, K);
      const qName = b.initBytes(`${t.name}_quantized`, DT_INT8, [N, K], q);
      const sName = b.initF32(`${t.name}_scale`, [N], scales);
      apply.set(t.name, (x, bias) => b.op('Gemm', [x, b.op('DequantizeLinear', [qName, sName], { axis: 0 }), ...(bias ? [bias] : [])], { transB: 1 }));
    } else {
      const { b: bits, scales } = quantizeNBits4(t.data, N, K);
      const qName = b.initBytes(`${t.name}_Q4`, DT_UINT8, [N, K / NBITS_BLOCK, NBITS_BLOCK / 2], bits);
      const sName = b.initF32(`${t.name}_scales`, [N * (K / NBITS_BLOCK)], scales);
      apply.set(t.name, (x, bias) => {
        const y = b.opIn(MS_DOMAIN, 'MatMulNBits', [x, qName, sName], { K, N, bits: 4, block_size: NBITS_BLOCK });
        return bias ? b.op('Add', [y, bias]) : y;
      });
    }
  }
  linears.set(b, (x, w, bias) => apply.get(w)?.(x, bias) ?? b.op('Gemm', bias ? [x, w, bias] : [x, w], { transB: 1 }));
}

/** y = x·Wᵀ for the weight named `w` (HF (out, in) layout), as addOnnxWeights stored it. x (N, in) → (N, out). */
export function onnxLinear(b: GraphBuilder, x: string, w: string, bias?: string): string {
  const f = linears.get(b);
  if (!f) throw new Error('onnx: addOnnxWeights must run before the graph applies a linear layer');
  return f(x, w, bias);
}
