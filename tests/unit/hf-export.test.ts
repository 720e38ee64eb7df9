// The HF folder export (src/export/hf-folder.ts) and import (src/export/import.ts): export → import gives the same
// slab and the same reference-model logits (tied and untied; F32 exactly, F16 as its rounding), export → import →
// export gives the same bytes; config.json carries ECOSYSTEM.md's fields; the weights file read by numpy holds
// exactly the HF tensor names (listed here by hand, not from the mapping table); a hand-assembled HF-style folder
// (BF16, HF's key order, rotary inv_freq and an int64 buffer, no head_dim) imports with the extras in `ignored`;
// shards with and without an index; clear errors for shape mismatches, missing tensors and broken folders; and a
// step-0 checkpoint for resuming training from an export.
import { describe, expect, it } from 'vitest';
import { exportHfFolder, MODEL_CONFIG_METADATA_KEY } from '../../src/export/hf-folder.ts';
import { checkpointFromImport, importHfFolder } from '../../src/export/import.ts';
import { f16BitsToF32, f32ToF16Bits, readSafetensors, writeSafetensors } from '../../src/export/safetensors.ts';
import type { ExportFile } from '../../src/export/types.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initHiddenProjection, initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { hasNumpy, numpyRead } from './safetensors-numpy.ts';

const TEXT = ['the cat sat on the mat', 'the dog ate the hat', 'a cat and a dog', 'hello world, hello there'];
const tokenizer = trainBpe(TEXT, { vocabSize: 256 + 12, specialTokens: ['<|endoftext|>'] });
const shape = { vocabSize: 271, hidden: 24, layers: 2, heads: 3, kvHeads: 1, headDim: 8, intermediate: 40, maxSeqLen: 32, initStd: 0.1 };
const tied = makeConfig({ ...shape, tieEmbeddings: true });
const untied = makeConfig({ ...shape, tieEmbeddings: false, rmsNormEps: 1e-6, ropeTheta: 50000 });

const asMap = (files: ExportFile[]) => new Map(files.map((f) => [f.path, f.bytes]));
const json = (files: Map<string, Uint8Array>, path: string) => JSON.parse(new TextDecoder().decode(files.get(path)!)) as Record<string, any>;
const ids = Uint32Array.from({ length: 2 * 9 }, (_, i) => (i * 37 + 5) % 271);
const logits = (c: ModelConfig, slab: Float32Array) => refForward(c, slab, ids, 2, 9).logits;

/** The HF tensor names of a 2-layer Llama, written out by hand from ECOSYSTEM.md (independent of hf-names.ts). */
function hfNamesByHand(withLmHead: boolean): string[] {
  const names = ['model.embed_tokens.weight', 'model.norm.weight'];
  for (const l of [0, 1]) {
    for (const s of ['input_layernorm', 'post_attention_layernorm']) names.push(`model.layers.${l}.${s}.weight`);
    for (const s of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) names.push(`model.layers.${l}.self_attn.${s}.weight`);
    for (const s of ['gate_proj', 'up_proj', 'down_proj']) names.push(`model.layers.${l}.mlp.${s}.weight`);
  }
  if (withLmHead) names.push('lm_head.weight');
  return names.sort();
}

describe('exportHfFolder → importHfFolder', () => {
  for (const [label, config] of [['tied', tied], ['untied', untied]] as const) {
    it(`${label}: the same slab bit for bit and the same reference logits (F32)`, () => {
      const params = initParams(config, 7);
      const files = exportHfFolder({ config, params, tokenizer, chatTemplate: '{{ messages }}' }, { metadata: { run: 'r1' } });
      expect(files.map((f) => f.path)).toEqual(['model.safetensors', 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
      const imp = importHfFolder(asMap(files));
      expect(imp.config).toEqual(config);
      expect(imp.params.length).toBe(params.length);
      expect(Buffer.from(imp.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
      expect(logits(imp.config, imp.params)).toEqual(logits(config, params));
      expect(imp.ignored).toEqual([]);
      expect(imp.warnings).toEqual([]);
      expect(imp.dtypes).toEqual(['F32']);
      expect(imp.tokenizer!.encode('the cat sat')).toEqual(tokenizer.encode('the cat sat'));
      expect(imp.special).toEqual({ bosToken: '<|endoftext|>', eosToken: '<|endoftext|>', padToken: '<|endoftext|>', chatTemplate: '{{ messages }}' });
      expect(imp.metadata).toEqual({ format: 'pt', run: 'r1', [MODEL_CONFIG_METADATA_KEY]: JSON.stringify(config) });
      // Tied: no lm_head.weight in the file and tie_word_embeddings true; untied: both the other way.
      const st = readSafetensors(files[0]!.bytes);
      expect(st.tensors.has('lm_head.weight')).toBe(!config.tieEmbeddings);
      expect(json(asMap(files), 'config.json').tie_word_embeddings).toBe(config.tieEmbeddings);
    });
  }

  it('export → import → export gives the same bytes in every file', () => {
    for (const config of [tied, untied]) {
      const first = exportHfFolder({ config, params: initParams(config, 3), tokenizer, eosToken: '<|endoftext|>', bosToken: null }, { metadata: { a: 'b' } });
      const imp = importHfFolder(asMap(first));
      const { [MODEL_CONFIG_METADATA_KEY]: _, format: __, ...metadata } = imp.metadata;
      const again = exportHfFolder({ config: imp.config, params: imp.params, tokenizer: imp.tokenizer!, ...imp.special }, { metadata });
      expect(again.map((f) => f.path)).toEqual(first.map((f) => f.path));
      again.forEach((f, i) => expect(Buffer.from(f.bytes).equals(Buffer.from(first[i]!.bytes)), f.path).toBe(true));
    }
  });

  it('F16: every weight is its f16 rounding, logits within fp16 tolerance; config.json says float16', () => {
    const params = initParams(untied, 9);
    const files = asMap(exportHfFolder({ config: untied, params, tokenizer }, { dtype: 'F16' }));
    const imp = importHfFolder(files);
    expect(imp.dtypes).toEqual(['F16']);
    expect(json(files, 'config.json').torch_dtype).toBe('float16');
    const rounded = params.map((x) => f16BitsToF32(f32ToF16Bits(x)));
    expect(Buffer.from(imp.params.buffer).equals(Buffer.from(rounded.buffer))).toBe(true);
    const a = logits(untied, params), b = logits(imp.config, imp.params);
    let maxDiff = 0, maxAbs = 0;
    a.forEach((x, i) => { maxDiff = Math.max(maxDiff, Math.abs(x - b[i]!)); maxAbs = Math.max(maxAbs, Math.abs(x)); });
    expect(maxDiff).toBeGreaterThan(0); // the rounding is real
    expect(maxDiff).toBeLessThan(3e-3 * maxAbs); // ≈ 2^-11 relative per weight, a few layers deep
    expect(files.get('model.safetensors')!.length).toBeLessThan(paramLayout(untied).count * 2 + 4096);
  });

  it('config.json has the fields ECOSYSTEM.md lists, with our values', () => {
    const files = asMap(exportHfFolder({ config: untied, params: initParams(untied, 1), tokenizer }));
    const c = json(files, 'config.json');
    const eos = tokenizer.tokenToId('<|endoftext|>');
    expect(c).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 271, hidden_size: 24, intermediate_size: 40,
      num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8, hidden_act: 'silu',
      max_position_embeddings: 32, rms_norm_eps: 1e-6, tie_word_embeddings: false, attention_bias: false, mlp_bias: false,
      bos_token_id: eos, eos_token_id: eos, pad_token_id: eos, rope_theta: 50000,
      rope_parameters: { rope_type: 'default', rope_theta: 50000 }, torch_dtype: 'float32',
    });
    expect(json(files, 'tokenizer_config.json')).toMatchObject({ tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: 32, eos_token: '<|endoftext|>' });
    expect(json(files, 'generation_config.json')).toMatchObject({ bos_token_id: eos, eos_token_id: eos });
  });

  it('numpy reads model.safetensors: exactly the HF names (listed by hand) with the exported values', () => {
    expect(hasNumpy(), 'python3 with numpy is required: python3 -m pip install numpy (.ci/run does)').toBe(true);
    for (const config of [tied, untied]) {
      const params = initParams(config, 5);
      const np = numpyRead(exportHfFolder({ config, params, tokenizer })[0]!.bytes);
      expect(Object.keys(np.tensors).sort()).toEqual(hfNamesByHand(!config.tieEmbeddings));
      expect(np.metadata.format).toBe('pt');
      const layout = paramLayout(config);
      const wq = layout.byName.get('layers.1.wq')!, wte = layout.byName.get('wte')!;
      const q = np.tensors['model.layers.1.self_attn.q_proj.weight']!;
      expect(q.shape).toEqual([24, 24]); // [heads·headDim, hidden]
      expect(q.values).toEqual([...params.subarray(wq.offset, wq.offset + wq.size)]);
      expect(np.tensors['model.embed_tokens.weight']!.values).toEqual([...params.subarray(wte.offset, wte.offset + wte.size)]);
      expect(np.tensors['model.layers.0.self_attn.k_proj.weight']!.shape).toEqual([8, 24]);
      expect(np.tensors['model.layers.0.mlp.down_proj.weight']!.shape).toEqual([24, 40]);
    }
  }, 60_000); // spawns Python: seconds on a loaded machine

  it('refuses bad options', () => {
    const x = { config: tied, params: initParams(tied, 1), tokenizer };
    expect(() => exportHfFolder(x, { dtype: 'BF16' as 'F16' })).toThrow("dtype must be 'F32' or 'F16'");
    expect(() => exportHfFolder(x, { metadata: { [MODEL_CONFIG_METADATA_KEY]: '{}' } })).toThrow('is reserved');
    expect(() => exportHfFolder({ ...x, params: new Float32Array(10) })).toThrow('parameter slab has 10 floats');
  });
});

// ------------------------------------------------------------------------------------------------ foreign folders

/** A safetensors file assembled by hand (not by our writer): raw little-endian bytes per tensor, HF's sorted order. */
function handSafetensors(tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const t of tensors) { header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] }; at += t.bytes.length; }
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const t of tensors) { out.set(t.bytes, p); p += t.bytes.length; }
  return out;
}

/** bf16 by truncation (what torch's .to(bfloat16) would round; truncation keeps the test's arithmetic obvious). */
const bf16Trunc = (x: Float32Array) => {
  const u = new Uint32Array(x.slice().buffer);
  const out = new Uint8Array(x.length * 2);
  u.forEach((b, i) => { out[2 * i] = (b >>> 16) & 0xff; out[2 * i + 1] = b >>> 24; });
  return { bytes: out, values: Float32Array.from(u, (b) => new Float32Array(Uint32Array.of(b & 0xffff0000).buffer)[0]!) };
};

describe('importHfFolder: folders written by others', () => {
  const config = tied;
  const params = initParams(config, 11);
  const layout = paramLayout(config);
  const ours = (name: string) => layout.byName.get(name)!;
  const byHf: Record<string, string> = { 'model.embed_tokens.weight': 'wte', 'model.norm.weight': 'final_norm' };
  for (const l of [0, 1]) {
    Object.assign(byHf, {
      [`model.layers.${l}.input_layernorm.weight`]: `layers.${l}.attn_norm`, [`model.layers.${l}.post_attention_layernorm.weight`]: `layers.${l}.mlp_norm`,
      [`model.layers.${l}.self_attn.q_proj.weight`]: `layers.${l}.wq`, [`model.layers.${l}.self_attn.k_proj.weight`]: `layers.${l}.wk`,
      [`model.layers.${l}.self_attn.v_proj.weight`]: `layers.${l}.wv`, [`model.layers.${l}.self_attn.o_proj.weight`]: `layers.${l}.wo`,
      [`model.layers.${l}.mlp.gate_proj.weight`]: `layers.${l}.w_gate`, [`model.layers.${l}.mlp.up_proj.weight`]: `layers.${l}.w_up`,
      [`model.layers.${l}.mlp.down_proj.weight`]: `layers.${l}.w_down`,
    });
  }
  const expected = new Float32Array(params.length);
  const tensors = Object.keys(byHf).sort().map((name) => {
    const e = ours(byHf[name]!);
    const { bytes, values } = bf16Trunc(params.subarray(e.offset, e.offset + e.size));
    expected.set(values, e.offset);
    return { name, dtype: 'BF16', shape: e.shape, bytes };
  });
  const invFreq = (l: number) => ({ name: `model.layers.${l}.self_attn.rotary_emb.inv_freq`, dtype: 'F32', shape: [4], bytes: new Uint8Array(Float32Array.of(1, 0.1, 0.01, 0.001).buffer) });
  const extras = [invFreq(0), invFreq(1), { name: 'model.position_ids', dtype: 'I64', shape: [1, 2], bytes: new Uint8Array(16) }];
  const hfConfig = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 271, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
    num_attention_heads: 3, num_key_value_heads: 1, hidden_act: 'silu', max_position_embeddings: 32, initializer_range: 0.1, rms_norm_eps: 1e-5,
    rope_theta: 10000, rope_scaling: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', bos_token_id: 0, eos_token_id: 0,
    transformers_version: '4.40.0', use_cache: true, pretraining_tp: 1, attention_bias: false,
  };
  const folder = (over: Record<string, unknown> = {}, ts = [...tensors, ...extras]) => new Map<string, Uint8Array>([
    ['config.json', new TextEncoder().encode(JSON.stringify({ ...hfConfig, ...over }))],
    ['model.safetensors', handSafetensors(ts)],
    ['README.md', new TextEncoder().encode('# a model')],
  ]);

  it('imports BF16 weights in HF order with extras (rotary inv_freq, an int64 buffer) reported in ignored', () => {
    const imp = importHfFolder(folder());
    expect(imp.config).toEqual(config);
    expect(Buffer.from(imp.params.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(logits(imp.config, imp.params)).toEqual(logits(config, expected));
    expect(imp.ignored).toEqual(['model.layers.0.self_attn.rotary_emb.inv_freq', 'model.layers.1.self_attn.rotary_emb.inv_freq', 'model.position_ids']);
    expect(imp.dtypes).toEqual(['BF16', 'F32']);
    expect(imp.tokenizer).toBeUndefined();
    expect(imp.warnings).toEqual(['no tokenizer.json: imported without a tokenizer']);
  });

  it('a tied model may carry lm_head.weight equal to the embedding; a different one is an error', () => {
    const emb = tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
    expect(importHfFolder(folder({}, [...tensors, { ...emb, name: 'lm_head.weight' }])).ignored).toEqual([]);
    const other = { ...emb, name: 'lm_head.weight', bytes: emb.bytes.map((b, i) => (i === 1 ? b ^ 0x40 : b)) };
    expect(() => importHfFolder(folder({}, [...tensors, other]))).toThrow("the config ties embeddings but 'lm_head.weight' differs");
  });

  it('paths under one folder (a picked directory) import the same', () => {
    const prefixed = new Map([...folder()].map(([p, b]) => [`my-model/${p}`, b]));
    prefixed.set('other/notes.txt', new Uint8Array(1));
    expect(Buffer.from(importHfFolder(prefixed).params.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    const two = new Map([...prefixed, ['b/config.json', prefixed.get('my-model/config.json')!]]);
    expect(() => importHfFolder(two)).toThrow("more than one model folder (config.json in 'b/' and 'my-model/')");
  });

  it('clear errors: shape mismatch, missing tensor, extra layer, unsupported dtype where a weight is needed', () => {
    expect(() => importHfFolder(folder({ intermediate_size: 48 }))).toThrow("import: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [40,24], the config needs [48,24]");
    expect(() => importHfFolder(folder({}, tensors.filter((t) => t.name !== 'model.norm.weight')))).toThrow("import: tensor 'model.norm.weight' is missing (needed for final_norm [24])");
    expect(() => importHfFolder(folder({ num_hidden_layers: 1 }))).toThrow("tensor 'model.layers.1.input_layernorm.weight' does not belong to a 1-layer model");
    expect(() => importHfFolder(folder({ tie_word_embeddings: false }))).toThrow("tensor 'lm_head.weight' is missing");
    const asInt = tensors.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'I16' } : t));
    expect(() => importHfFolder(folder({}, asInt))).toThrow("model.safetensors: tensor 'model.norm.weight' has dtype I16; the model needs it as a float");
    expect(() => importHfFolder(folder({ hidden_act: 'gelu' }))).toThrow('hidden_act is "gelu": only "silu"');
  });

  it('clear errors: broken or incomplete folders', () => {
    const f = folder();
    expect(() => importHfFolder(new Map([['model.safetensors', f.get('model.safetensors')!]]))).toThrow('import: no config.json among the 1 files');
    expect(() => importHfFolder(new Map([['config.json', f.get('config.json')!], ['pytorch_model.bin', new Uint8Array(4)]])))
      .toThrow("no model.safetensors (nor model-*-of-*.safetensors shards); found 'pytorch_model.bin': only safetensors weights can be imported");
    expect(() => importHfFolder(new Map([...f, ['config.json', new TextEncoder().encode('{"model_type": ')]]))).toThrow('import: config.json: not valid JSON');
    const cut = f.get('model.safetensors')!.subarray(0, 300);
    expect(() => importHfFolder(new Map([...f, ['model.safetensors', cut]]))).toThrow(/import: model.safetensors: (header length \d+ runs past|tensor .* runs past the data area)/);
    const bigTok = trainBpe(TEXT, { vocabSize: 280, specialTokens: ['<|endoftext|>'], minFrequency: 1 });
    expect(() => importHfFolder(new Map([...f, ['tokenizer.json', new TextEncoder().encode(JSON.stringify(bigTok.toJSON()))]]))).toThrow(`tokenizer.json has ${bigTok.vocabSize} tokens, config.json's vocab_size is only 271`);
    const tc = importHfFolder(new Map([...f, ['tokenizer.json', new TextEncoder().encode('{"model": {"type": "Unigram"}}')]]));
    expect(tc.tokenizer).toBeUndefined();
    expect(tc.warnings[0]).toMatch(/^tokenizer\.json: .*; imported without a tokenizer$/);
  });

  it('our metadata config disagreeing with config.json is a warning; config.json wins', () => {
    const files = asMap(exportHfFolder({ config: untied, params: initParams(untied, 2), tokenizer }));
    files.set('config.json', new TextEncoder().encode(JSON.stringify({ ...json(files, 'config.json'), max_position_embeddings: 64 })));
    const imp = importHfFolder(files);
    expect(imp.config.maxSeqLen).toBe(64);
    expect(imp.warnings).toEqual(['model.safetensors: the model config in its metadata differs from config.json in maxSeqLen (32 vs 64); using config.json']);
  });
});

// ------------------------------------------------------------------------------------------------ shards

describe('importHfFolder: sharded weights', () => {
  const params = initParams(untied, 4);
  const files = asMap(exportHfFolder({ config: untied, params, tokenizer }));
  const all = [...readSafetensors(files.get('model.safetensors')!).tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  const half = Math.ceil(all.length / 2);
  const shardA = writeSafetensors(all.slice(0, half)), shardB = writeSafetensors(all.slice(half));
  const A = 'model-00001-of-00002.safetensors', B = 'model-00002-of-00002.safetensors';
  const weightMap = Object.fromEntries(all.map((t, i) => [t.name, i < half ? A : B]));
  const index = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  const base = new Map([...files].filter(([p]) => p !== 'model.safetensors'));

  it('with model.safetensors.index.json, and by shard names alone: the same slab', () => {
    for (const withIndex of [true, false]) {
      const f = new Map([...base, [A, shardA], [B, shardB]]);
      if (withIndex) f.set('model.safetensors.index.json', index);
      const imp = importHfFolder(f);
      expect(Buffer.from(imp.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
      expect(imp.config).toEqual(untied);
    }
  });

  it('clear errors: a missing shard, an index naming the wrong shard, a tensor in two shards', () => {
    expect(() => importHfFolder(new Map([...base, [A, shardA]]))).toThrow(`import: shard '${B}' is missing`);
    expect(() => importHfFolder(new Map([...base, [A, shardA], ['model.safetensors.index.json', index]]))).toThrow(`weight_map["${all[half]!.name}"] names '${B}', which is not among the files`);
    const wrong = new TextEncoder().encode(JSON.stringify({ weight_map: { ...weightMap, [all[0]!.name]: B } }));
    expect(() => importHfFolder(new Map([...base, [A, shardA], [B, shardB], ['model.safetensors.index.json', wrong]]))).toThrow(`puts tensor '${all[0]!.name}' in '${B}', but it is in '${A}'`);
    const dup = writeSafetensors([...all.slice(half), all[0]!]);
    expect(() => importHfFolder(new Map([...base, [A, shardA], [B, dup]]))).toThrow(`tensor '${all[0]!.name}' is in both '${A}' and '${B}'`);
  });
});

// ------------------------------------------------------------------------------------------------ resume training

describe('checkpointFromImport', () => {
  it('is a step-0 checkpoint of the imported slab with zero moments, and survives encode/decode', () => {
    const params = initParams(tied, 8);
    const imp = importHfFolder(asMap(exportHfFolder({ config: tied, params, tokenizer })));
    const train = makeTrainConfig({ batchSize: 2, seqLen: 8, steps: 4 });
    const c = checkpointFromImport(imp, train);
    expect(c).toMatchObject({ model: tied, train, step: 0, adamStep: 0, cursor: { epoch: 0, row: 0 } });
    expect(c.tail).toBeUndefined();
    expect([...c.params]).toEqual([...params]);
    expect(c.m.length).toBe(params.length);
    expect(c.m.every((x) => x === 0) && c.v.every((x) => x === 0)).toBe(true);
    const back = decodeCheckpoint(encodeCheckpoint(c));
    expect([...back.params]).toEqual([...params]);
    expect(JSON.stringify(back.model)).toBe(JSON.stringify(makeConfig({ ...shape, tieEmbeddings: true }))); // Trainer.restore compares this
  });

  it('with hidden-state distillation: W_h as a fresh trainer makes it, moments cover slab + W_h', () => {
    const params = initParams(untied, 8);
    const train = makeTrainConfig({ batchSize: 2, seqLen: 8, hiddenWeight: 0.5, teacherHiddenWidth: 16, seed: 9 });
    const c = checkpointFromImport({ config: untied, params }, train);
    expect([...c.tail!]).toEqual([...initHiddenProjection(untied, 16, 9)]);
    expect(c.m.length).toBe(params.length + 16 * 24);
    expect(() => checkpointFromImport({ config: untied, params: params.subarray(1) }, train)).toThrow('checkpointFromImport: ');
  });
});
