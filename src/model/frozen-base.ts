// The frozen base of a LoRA model on the GPU (issue #21): the model's weights laid out by base-layout.ts (the linears
// in 16-bit words under a bf16/f16 base, the rest f32) in a sharded slab, parameters only — no gradients, no moments.
// A DPO reference shares its policy's (`shared`: not destroyed with it). Uploads go tensor by tensor (a whole f32
// slab, or a BaseSource's tensors: a bf16/f16 file's words as they are), reads widen 16-bit tensors back to f32.
import type { Binding } from '../gpu/dispatch.ts';
import type { HalfFormat } from '../util/half.ts';
import { baseLayout, baseTensorValues, baseTensorWords, type BaseFormat, type BaseLayout, type BaseSource } from './base-layout.ts';
import type { ModelConfig } from './config.ts';
import { paramLayout, type ParamLayout } from './params.ts';
import { shardRanges, SlabShards } from './slab-shards.ts';

export class FrozenBase {
  readonly layout: BaseLayout;
  readonly slab: SlabShards;
  private readonly params: ParamLayout;
  private readonly owns: boolean;

  constructor(device: GPUDevice, config: ModelConfig, format: BaseFormat, maxBufferBytes: number, shared?: SlabShards) {
    this.layout = baseLayout(config, format);
    this.params = paramLayout(config);
    this.slab = shared ?? new SlabShards(device, shardRanges(this.layout.entries, this.layout.words, Math.floor(maxBufferBytes / 256) * 64), 'base');
    this.owns = !shared;
    if (this.slab.floats !== this.layout.words) throw new Error(`GpuModel: the shared base holds ${this.slab.floats} words, this config's ${format} base ${this.layout.words}`);
  }

  /** Whether `name` is one of the base's weights. */
  has(name: string): boolean {
    return this.layout.byName.has(name);
  }

  /** Weight `name` as a binding (16-bit words when the base holds it in 16 bits). */
  binding(name: string): Binding {
    const e = this.layout.byName.get(name)!;
    return this.slab.binding(e.offset, e.words);
  }

  /** The 16-bit format weight `name` is held in, if it is. */
  half(name: string): HalfFormat | undefined {
    return this.layout.byName.get(name)?.half;
  }

  /** Writes the whole model from an f32 slab (paramLayout order), tensor by tensor. */
  uploadSlab(slab: Float32Array): void {
    if (slab.length !== this.params.slabFloats) throw new Error(`uploadParams: ${slab.length} floats, the layout has ${this.params.slabFloats}`);
    for (const e of this.params.entries) this.uploadTensor(e.name, slab.subarray(e.offset, e.offset + e.size));
  }

  /** Writes a base: a whole f32 slab, or tensor by tensor (baseTensorsOf: 16-bit weights as their words). */
  upload(base: BaseSource): void {
    if (base instanceof Float32Array) return this.uploadSlab(base);
    const seen = new Set<string>();
    for (const t of base()) { this.uploadTensor(t.name, t.data); seen.add(t.name); }
    const missing = this.layout.entries.filter((e) => !seen.has(e.name));
    if (missing.length) throw new Error(`uploadBase: no ${missing.map((e) => e.name).slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''} among the base's tensors`);
  }

  /** Writes one weight: f32 values, or its packed 16-bit words as they are when the base holds it in that format. */
  uploadTensor(name: string, data: Float32Array | Uint32Array): void {
    const e = this.layout.byName.get(name);
    if (!e) throw new Error(`uploadBaseTensor: no weight '${name}'`);
    const words = data instanceof Uint32Array ? data : baseTensorWords(e, data);
    if (words.length !== e.words || (data instanceof Uint32Array && !e.half)) throw new Error(`uploadBaseTensor: ${name} takes ${e.words} ${e.half ?? 'f32'} words, got ${words.length} ${data instanceof Uint32Array ? 'packed words' : 'values'}`);
    this.slab.write(words instanceof Float32Array ? words : new Float32Array(words.buffer, words.byteOffset, words.length), e.offset);
  }

  /** The weights as an f32 slab (paramLayout order), 16-bit tensors widened. */
  async read(): Promise<Float32Array> {
    const out = new Float32Array(this.params.slabFloats);
    for (const e of this.layout.entries) {
      const words = await this.slab.read(e.words, e.offset);
      out.set(baseTensorValues(e, new Uint32Array(words.buffer, words.byteOffset, e.words)), this.params.byName.get(e.name)!.offset);
    }
    return out;
  }

  destroy(): void {
    if (this.owns) this.slab.destroy();
  }
}
