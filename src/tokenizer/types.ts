// The tokenizer as the rest of the engine sees it: text ↔ ids, the vocabulary, and the two HF files it is saved
// as. Two implementations:
//   BpeTokenizer (bpe.ts)  our byte-level BPE, trained in the browser on the user's data, and any tokenizer.json
//                          of that exact configuration;
//   HfTokenizer (hf.ts)    any tokenizer.json transformers.js reads (Qwen, Llama-3, Gemma, SmolLM, ...), encoded
//                          and decoded by transformers.js's own tokenizer library: a real teacher's vocabulary.
// loadTokenizer (hf.ts) picks the first that reads a file.
import type { TokenizerConfigOptions } from './hf-json.ts';

export type { TokenizerConfigOptions } from './hf-json.ts';

/** Special tokens named by a tokenizer_config.json (contents), null where it names none. */
export interface NamedSpecialTokens {
  bos: string | null;
  eos: string | null;
  pad: string | null;
  unk: string | null;
}

export interface TextTokenizer {
  readonly kind: 'bpe' | 'hf';
  /** Number of ids (highest id + 1), added and special tokens included: the model's real vocabulary. */
  readonly vocabSize: number;
  /** Contents of the added tokens marked special (what chat templates close turns with). */
  readonly specialTokens: string[];
  /**
   * Ids the tokenizer's post-processor puts before every text (HF `add_special_tokens=True`), e.g. Gemma's
   * `<bos>`; [] when none. encode() never adds them.
   */
  readonly prefixIds: readonly number[];
  /** The special tokens its tokenizer_config.json names (undefined: it came without one). */
  readonly namedSpecial?: NamedSpecialTokens;
  /** The chat template its tokenizer_config.json carries, if any. */
  readonly chatTemplate?: string;
  /**
   * Text → ids exactly as HF tokenizers' `encode(text, add_special_tokens=False)`: added/special tokens written in
   * the text are recognised, nothing is added around it.
   */
  encode(text: string): number[];
  /** Ids → text, special tokens kept, no clean-up of spaces; throws on an id outside the vocabulary. */
  decode(ids: ArrayLike<number>): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** HF `tokenizer.json` object (JSON.stringify it to write the file). */
  toJSON(): object;
  /** The tokenizer.json file it was read from, when it keeps it (HfTokenizer): exports write it unchanged. */
  readonly sourceBytes?: Uint8Array;
  /** HF `tokenizer_config.json` object; named tokens must be tokens of this tokenizer. */
  tokenizerConfigJson(opts: TokenizerConfigOptions): Record<string, unknown>;
}
