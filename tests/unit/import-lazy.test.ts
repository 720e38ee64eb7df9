// An HF folder read without its weights in f32 (src/export/import-lazy.ts): importHfMeta gives what importHfFolder
// gives but the weights (config, tokenizer, special tokens, dtypes), checking every tensor by its header; a missing
// tensor or a wrong shape is refused naming it; baseTensorsOf yields a LoRA base tensor by tensor — a bf16 file's
// linears as its own words, the rest in f32 — equal to the full import's values.
import { describe, expect, it } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { baseTensorsOf, importHfMeta } from '../../src/export/import-lazy.ts';
import { readSafetensors, writeSafetensors } from '../../src/export/safetensors.ts';
import { baseLayout } from '../../src/model/base-layout.ts';
import { paramLayout } from '../../src/model/params.ts';
import { packHalf } from '../../src/util/half.ts';

const folder = readFolder('tests/fixtures/brown-teacher-small');
const st = readSafetensors(folder.get('model.safetensors')!, 'fixture');
const rewrite = (keep: (name: string) => boolean, dtype: 'F32' | 'BF16', reshape?: string) => new Map([...folder, ['model.safetensors', writeSafetensors(
  [...st.tensors].filter(([n]) => keep(n)).map(([name, t]) => ({ name, shape: name === reshape ? [t.shape[1]!, t.shape[0]!] : t.shape, data: t.data })), { dtype, metadata: st.metadata })]]);

describe('importHfMeta and baseTensorsOf', () => {
  it('reads what importHfFolder reads but the weights', () => {
    const full = importHfFolder(folder, 'fixture'), meta = importHfMeta(folder, 'fixture');
    expect(meta.config).toEqual(full.config);
    expect(meta.special).toEqual(full.special);
    expect(meta.textTokenizer!.vocabSize).toBe(full.textTokenizer!.vocabSize);
    expect(meta.dtypes).toEqual(full.dtypes);
    expect('params' in meta).toBe(false);
  });

  it('refuses a missing tensor and a wrong shape, naming the tensor', () => {
    expect(() => importHfMeta(rewrite((n) => n !== 'model.layers.1.mlp.up_proj.weight', 'F32'), 'x')).toThrow(/tensor 'model.layers.1.mlp.up_proj.weight' is missing \(needed for layers.1.w_up/);
    expect(() => importHfMeta(rewrite(() => true, 'F32', 'model.layers.0.mlp.up_proj.weight'), 'x')).toThrow(/tensor 'model.layers.0.mlp.up_proj.weight' has shape \[/);
  });

  it('yields a bf16 base tensor by tensor: the file’s words for the linears, f32 for the rest, equal to the full import', () => {
    const bf16 = rewrite(() => true, 'BF16');
    const full = importHfFolder(bf16, 'bf16');
    const pl = paramLayout(full.config), bl = baseLayout(full.config, 'bf16');
    const seen: string[] = [];
    for (const t of baseTensorsOf(bf16, full.config, 'bf16', 'bf16')) {
      const e = pl.byName.get(t.name)!, values = full.params.subarray(e.offset, e.offset + e.size);
      if (bl.byName.get(t.name)!.half) {
        expect(t.data).toBeInstanceOf(Uint32Array);
        expect(t.data).toEqual(packHalf(values, 'bf16'));
      } else expect(t.data).toEqual(values);
      seen.push(t.name);
    }
    expect(seen).toEqual(pl.entries.map((e) => e.name));
  }, 30_000); // ~1 s alone; a loaded 2-core machine made it pass 5 s
});
