// The sizes of "Distil the demo" (demo.ts) by adapter. A real GPU: a 1M-parameter student on 240 answers, a few
// minutes; a software adapter (SwiftShader, CPU Vulkan): a toy that only shows the walk end to end.
export interface DemoSize {
  prompts: number;
  maxTokens: number;
  preset: string;
  steps: number;
  batch: number;
  seqLen: number;
  /** Every Nth record held out (a toy dataset needs a bigger share to have a held-out batch at all). */
  heldOutEvery: number;
}

/** A real GPU: a 1M student, a few minutes; a software adapter (SwiftShader): a toy that only shows the walk. */
export const DEMO_SIZES: Record<'gpu' | 'software', DemoSize> = {
  gpu: { prompts: 240, maxTokens: 40, preset: 'tiny-1m', steps: 300, batch: 16, seqLen: 64, heldOutEvery: 10 },
  software: { prompts: 16, maxTokens: 12, preset: 'nano', steps: 6, batch: 4, seqLen: 24, heldOutEvery: 4 },
};

