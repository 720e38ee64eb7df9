// llama.cpp in tests, through npm node-llama-cpp's prebuilt CPU binaries (no build, no GPU, no network): load a
// GGUF file, tokenize with its own tokenizer, and read the next-token logits and probabilities it computes at
// every position of a sequence. Everything native is disposed by `close()` (node-llama-cpp holds native memory and
// threads; an undisposed Llama keeps the process alive).
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';

export interface LlamaCppPosition {
  /** Raw logits over the whole vocabulary (index = token id). */
  logits: Float64Array;
  /** node-llama-cpp's probabilities (softmax of the logits) over the whole vocabulary. */
  probs: Float64Array;
}

export interface LlamaCppModel {
  /** The special ids llama.cpp resolved from the file (null = none). */
  readonly bos: number | null;
  readonly eos: number | null;
  readonly addsBos: boolean;
  /** llama.cpp's tokenizer; `special` = parse special/control tokens in the text (as HF tokenizers always do). */
  tokenize(text: string, special?: boolean): number[];
  detokenize(ids: number[], special?: boolean): string;
  /** Next-token distributions after each prefix ids[0..i], i = 0..n-1, from one fresh sequence. */
  evaluate(ids: number[]): Promise<LlamaCppPosition[]>;
  dispose(): Promise<void>;
}

let llamaPromise: Promise<Llama> | undefined;

/** The shared Llama instance (prebuilt CPU backend; throws if the prebuilt binaries cannot load). */
export function llamaCpp(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false, maxThreads: 2 });
  return llamaPromise;
}

/** Disposes the shared Llama instance (call in afterAll). */
export async function closeLlamaCpp(): Promise<void> {
  const p = llamaPromise;
  llamaPromise = undefined;
  if (p) await (await p).dispose();
}

/**
 * Loads a GGUF model; `vocabSize` sizes the returned logit arrays (ids absent from llama.cpp's maps stay NaN);
 * `lora`: a LoRA adapter GGUF applied (scale 1) in every context.
 */
export async function loadLlamaCppModel(modelPath: string, vocabSize: number, contextSize = 64, lora?: string): Promise<LlamaCppModel> {
  const llama = await llamaCpp();
  const model: LlamaModel = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: false });
  return {
    bos: model.tokens.bos === null ? null : Number(model.tokens.bos),
    eos: model.tokens.eos === null ? null : Number(model.tokens.eos),
    addsBos: model.tokens.shouldPrependBosToken,
    tokenize: (text, special = true) => model.tokenize(text, special).map(Number),
    detokenize: (ids, special = true) => model.detokenize(ids as Token[], special),
    async evaluate(ids) {
      // F32 KV cache (the default is F16, which would round K and V); one sequence, batch = the whole prompt.
      const context = await model.createContext({
        contextSize, batchSize: contextSize, sequences: 1, flashAttention: false,
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', threads: 2,
        ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
      });
      try {
        const seq = context.getSequence();
        const out = await seq.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { logits: true, probabilities: true } }]));
        return ids.map((_, i) => {
          const next = out[i]?.next;
          if (!next?.logits || !next.probabilities) throw new Error(`llama.cpp returned no logits at position ${i}`);
          const logits = new Float64Array(vocabSize).fill(NaN), probs = new Float64Array(vocabSize).fill(NaN);
          for (const [t, v] of next.logits) logits[t] = v;
          for (const [t, v] of next.probabilities) probs[t] = v;
          return { logits, probs };
        });
      } finally {
        await context.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}
