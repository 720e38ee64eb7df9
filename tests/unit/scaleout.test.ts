// Scale-out export (src/export/dataset.ts): SFT (messages and prompt-completion), DPO (conversational and
// standard) JSONL as TRL reads them, the teacher top-k Parquet read back with hyparquet (ids in the token table or
// the teacher tokenizer's space; log-probs within the codec's bound of what the teacher sent), the configs parsed
// back (PyYAML and pyarrow, required: .ci/run installs them), and credentials: refused at
// store time, absent from every exported byte, a key-like conversation refused unless allowed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { scaleoutExport, toYaml, type TeacherVocab } from '../../src/export/dataset.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import type { ExportFile } from '../../src/export/types.ts';
import { SecretLeakError } from '../../src/store/errors.ts';
import type { ChatMessage, PairInput, RecordInput } from '../../src/store/schema.ts';
import { encodeTopK, packTopKRows } from '../../src/store/topk.ts';
import { Rng } from '../../src/util/rng.ts';
import { torchPython } from '../support/torch-python.ts';
import { freshStore, provenance } from './store-fixtures.ts';

const FAKE_KEY = 'sk-test' + 'A1b2C3d4E5f6G7h8I9j0K1';
const TABLE = [' the', ' cat', ' sat', '!', 'é', ' 😀', ' on', ' mat'];

const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });

/** `n` tokens of top-k over TABLE, seeded: the original (ids, logprobs) and the packed rows. */
function topkRows(seed: number, n: number) {
  const rng = new Rng(seed);
  const orig: { ids: number[]; logprobs: number[] }[] = [];
  const rows: Uint8Array[] = [];
  for (let t = 0; t < n; t++) {
    const k = 2 + Math.floor(rng.next() * 5);
    const ids = [...TABLE.keys()].sort(() => rng.next() - 0.5).slice(0, k);
    const logprobs = ids.map(() => -rng.next() * 8);
    orig.push({ ids, logprobs });
    rows.push(encodeTopK(Uint32Array.from(ids), Float32Array.from(logprobs), k));
  }
  return { orig, packed: packTopKRows(rows) };
}

const TK1 = topkRows(1, 5);
const TK2 = topkRows(2, 3);
const RECORDS: RecordInput[] = [
  { key: 'r1', messages: [m('system', 'be brief'), m('user', 'hi'), m('assistant', 'the cat sat!')], provenance: provenance(), topk: [{ turn: 2, rows: TK1.packed, tokens: 5 }] },
  { key: 'r2', messages: [m('user', 'é?'), m('assistant', 'on'), m('user', 'more'), m('assistant', 'mat 😀')], provenance: provenance(), topk: [{ turn: 3, rows: TK2.packed, tokens: 3 }] },
  { key: 'r3', messages: [m('user', 'unanswered')], provenance: provenance({ teacher: { kind: 'import', model: 'other', baseURLHost: '' } }) },
];
const PAIRS: PairInput[] = [
  { key: 'p1', prompt: [m('user', 'pick')], chosen: 'good', rejected: 'bad', provenance: provenance() },
  { key: 'p2', prompt: [m('system', 's'), m('user', 'pick2')], chosen: 'g2', rejected: 'b2', provenance: provenance() },
];

async function fixture(records = RECORDS, pairs = PAIRS) {
  const { store } = await freshStore();
  const ds = await store.createDataset({ name: 'scale' });
  await store.putRecords(ds.id, records);
  if (pairs.length) await store.putPairs(ds.id, pairs);
  // The token table lives in a feature job's cursor (src/elicit/feature.ts datasetVocab).
  const job = await store.createJob({ kind: 'elicit:feature', datasetId: ds.id, config: {} });
  await store.updateJob(job.id, { cursor: { next: 2, vocab: TABLE, stats: {} }, status: 'done' });
  return { store, ds };
}

const text = (files: ExportFile[], path: string): string => {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path} in ${files.map((x) => x.path).join(', ')}`);
  return new TextDecoder().decode(f.bytes);
};
const lines = (files: ExportFile[], path: string): unknown[] => text(files, path).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
const parquetRows = async (files: ExportFile[], path: string) => {
  const bytes = files.find((x) => x.path === path)!.bytes;
  return parquetReadObjects({ file: bytes.slice().buffer });
};

describe('TRL files', () => {
  it('SFT messages + prompt-completion, DPO conversational, configs, manifest', async () => {
    const { store, ds } = await fixture();
    const { files, report } = await scaleoutExport(store, ds.id, { sftFormat: 'both' });
    expect(files.map((f) => f.path).sort()).toEqual([
      'README.md', 'chat_template.jinja', 'distillkit.yaml', 'dpo/train.jsonl', 'manifest.json', 'sft-prompt-completion/train.jsonl',
      'sft/train.jsonl', 'teacher-topk/meta.json', 'teacher-topk/token_table.json', 'teacher-topk/train.parquet', 'trl-distillation.yaml', 'trl-dpo.yaml',
      'trl-sft.yaml',
    ]);
    expect(lines(files, 'sft/train.jsonl')).toEqual(RECORDS.map((r) => ({ messages: r.messages })));
    expect(lines(files, 'sft-prompt-completion/train.jsonl')).toEqual([
      { prompt: RECORDS[0]!.messages.slice(0, 2), completion: [m('assistant', 'the cat sat!')] },
      { prompt: RECORDS[1]!.messages.slice(0, 3), completion: [m('assistant', 'mat 😀')] },
    ]);
    expect(lines(files, 'dpo/train.jsonl')).toEqual([
      { prompt: [m('user', 'pick')], chosen: [m('assistant', 'good')], rejected: [m('assistant', 'bad')] },
      { prompt: [m('system', 's'), m('user', 'pick2')], chosen: [m('assistant', 'g2')], rejected: [m('assistant', 'b2')] },
    ]);
    expect(report).toMatchObject({ sft: 3, promptCompletion: 2, dpo: 2, topkRows: 2, topkTokens: 8, skippedCount: 1 });
    expect(report.skipped[0]!.reason).toMatch(/ends with an assistant message/);
    expect(text(files, 'trl-sft.yaml')).toContain('dataset_name: "./sft"\n');
    expect(text(files, 'trl-sft.yaml')).toContain('learning_rate: 0.00002\n');
    expect(text(files, 'distillkit.yaml')).toContain('  path: "teacher-7b"\n'); // the teacher most records name
    expect(text(files, 'trl-distillation.yaml')).toContain('teacher_model_name_or_path: "teacher-7b"\n');
    expect(text(files, 'README.md')).toMatch(/trl sft --config trl-sft\.yaml/);
    expect(text(files, 'README.md')).toMatch(/trl distillation --config trl-distillation\.yaml/);
    expect(JSON.parse(text(files, 'manifest.json')).files).toContain('dpo/train.jsonl');
  });

  it('standard DPO keeps single-user prompts only; no pairs → no DPO files; prompt-completion alone', async () => {
    const { store, ds } = await fixture();
    const { files, report } = await scaleoutExport(store, ds.id, { dpoFormat: 'standard', sftFormat: 'prompt-completion', chatTemplate: null });
    expect(lines(files, 'dpo/train.jsonl')).toEqual([{ prompt: 'pick', chosen: 'good', rejected: 'bad' }]);
    expect(report.skipped.map((s) => s.what)).toEqual(['record 3', 'pair 2']);
    expect(files.some((f) => f.path === 'sft/train.jsonl' || f.path === 'chat_template.jinja')).toBe(false);
    expect(text(files, 'trl-sft.yaml')).toContain('dataset_name: "./sft-prompt-completion"');
    expect(text(files, 'trl-sft.yaml')).not.toContain('chat_template_path');
    const bare = await fixture(RECORDS.slice(0, 1), []);
    const out = await scaleoutExport(bare.store, bare.ds.id);
    expect(out.files.some((f) => f.path.startsWith('dpo/') || f.path === 'trl-dpo.yaml')).toBe(false);
  });

  it('refuses unknown options, bad numbers and a missing dataset', async () => {
    const { store, ds } = await fixture();
    await expect(scaleoutExport(store, ds.id, { foo: 1 } as never)).rejects.toThrow(/unknown option "foo"/);
    await expect(scaleoutExport(store, ds.id, { training: { learningRate: -1 } })).rejects.toThrow(/training\.learningRate must be/);
    await expect(scaleoutExport(store, 'nope')).rejects.toThrow(/no dataset "nope"/);
  });
});

describe('teacher top-k', () => {
  it('Parquet rows hold each token\'s top-k in the token table, within the codec bound of what the teacher sent', async () => {
    const { store, ds } = await fixture();
    const { files } = await scaleoutExport(store, ds.id);
    const rows = await parquetRows(files, 'teacher-topk/train.parquet');
    expect(rows.map((r) => [r.turn, r.num_tokens])).toEqual([[2, 5], [3, 3]]);
    expect(rows[0]!.messages).toEqual(RECORDS[0]!.messages);
    expect(JSON.parse(text(files, 'teacher-topk/token_table.json'))).toEqual(TABLE);
    for (const [row, tk] of [[rows[0]!, TK1], [rows[1]!, TK2]] as const) {
      tk.orig.forEach((o, t) => {
        const ids = row.topk_ids[t] as number[];
        const lps = row.topk_logprobs[t] as number[];
        expect([...ids].sort()).toEqual([...o.ids].sort());
        expect(row.topk_tokens[t]).toEqual(ids.map((id) => TABLE[id]));
        for (let i = 1; i < lps.length; i++) expect(lps[i]!).toBeLessThanOrEqual(lps[i - 1]!);
        const bound = (Math.max(...o.logprobs) - Math.min(...o.logprobs)) / 510 * 1.001 + 1e-6;
        ids.forEach((id, i) => expect(Math.abs(lps[i]! - o.logprobs[o.ids.indexOf(id)]!)).toBeLessThanOrEqual(bound));
      });
    }
    const meta = JSON.parse(text(files, 'teacher-topk/meta.json'));
    expect(meta).toMatchObject({ id_space: 'token-table', tokenizer: null, vocab_size: TABLE.length, rows: 2, tokens: 8, teacher_models: ['teacher-7b', 'other'] });
    const kv = parquetMetadata(files.find((f) => f.path === 'teacher-topk/train.parquet')!.bytes.slice().buffer).key_value_metadata;
    expect(JSON.parse(kv!.find((x) => x.key === 'webgpu-distill.teacher-topk')!.value!)).toEqual(meta);
  });

  it('ids move to the teacher tokenizer\'s space; an unknown token is an error naming where', async () => {
    const { store, ds } = await fixture();
    const vocab: TeacherVocab = { name: 'org/teacher', vocabSize: 2000, idOf: (s) => (TABLE.includes(s) ? 1000 + TABLE.indexOf(s) : undefined) };
    const { files } = await scaleoutExport(store, ds.id, { teacherVocab: vocab });
    expect(files.some((f) => f.path === 'teacher-topk/token_table.json')).toBe(false);
    const rows = await parquetRows(files, 'teacher-topk/train.parquet');
    expect(rows[0]!.topk_ids[0]).toEqual((rows[0]!.topk_tokens[0] as string[]).map((s) => 1000 + TABLE.indexOf(s)));
    expect(JSON.parse(text(files, 'teacher-topk/meta.json'))).toMatchObject({ id_space: 'teacher-tokenizer', tokenizer: 'org/teacher', vocab_size: 2000 });
    const partial: TeacherVocab = { ...vocab, idOf: (s) => (s === ' mat' ? undefined : vocab.idOf(s)) };
    await expect(scaleoutExport(store, ds.id, { teacherVocab: partial })).rejects.toThrow(/record \d+ turn \d token \d: teacher token " mat" has no id in tokenizer "org\/teacher"/);
    await expect(scaleoutExport(store, ds.id, { tokenTable: TABLE.slice(0, 3) })).rejects.toThrow(/top-k id \d is not in the dataset's token table \(3 entries\)/);
  });
});

describe('credentials', () => {
  it('the store refuses them in provenance; the export holds no "sk-" anywhere', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'x' });
    const leaky = (params: Record<string, string>): RecordInput => ({ key: 'k', messages: [m('user', 'q')], provenance: { ...provenance(), params } });
    await expect(store.putRecords(ds.id, [leaky({ api_key: 'x' })])).rejects.toBeInstanceOf(SecretLeakError);
    await expect(store.putRecords(ds.id, [leaky({ note: FAKE_KEY })])).rejects.toBeInstanceOf(SecretLeakError);
    await expect(store.putPairs(ds.id, [{ ...PAIRS[0]!, provenance: { ...provenance(), params: { authorization: 'Bearer abcdefghijk' } } }])).rejects.toBeInstanceOf(SecretLeakError);

    const { store: s2, ds: d2 } = await fixture();
    const { files } = await scaleoutExport(s2, d2.id, { sftFormat: 'both' });
    for (const f of files) {
      const body = f.path.endsWith('.parquet') ? JSON.stringify(await parquetRows(files, f.path)) : new TextDecoder().decode(f.bytes);
      expect(body, f.path).not.toMatch(/sk-|apiKey|api_key|127\.0\.0\.1/);
    }
    await expect(scaleoutExport(s2, d2.id, { studentModel: 'https://user:pw@host/model' })).rejects.toBeInstanceOf(SecretLeakError);
    await expect(scaleoutExport(s2, d2.id, { chatTemplate: `{{ '${FAKE_KEY}' }}` })).rejects.toBeInstanceOf(SecretLeakError);
  });

  it('a conversation that contains a key is refused by id unless allowed', async () => {
    const { store, ds } = await fixture([...RECORDS, { key: 'leak', messages: [m('user', `my key is ${FAKE_KEY}`), m('assistant', 'ok')], provenance: provenance() }]);
    await expect(scaleoutExport(store, ds.id)).rejects.toThrow(/1 conversation\(s\) contain text that looks like a credential \(record 4\)/);
    const { files } = await scaleoutExport(store, ds.id, { allowSecretLikeContent: true });
    expect(text(files, 'sft/train.jsonl')).toContain(FAKE_KEY);
  });
});

describe('YAML', () => {
  it('floats keep a dot (PyYAML reads 1e-5 as a string), strings are quoted, nesting by indentation', () => {
    expect(toYaml({ a: 2e-5, b: 1.5e-7, c: 0.5, d: 3, e: 1e21, f: 'x: "y"', g: true, h: null })).toBe(
      'a: 0.00002\nb: 1.5e-7\nc: 0.5\nd: 3\ne: 1.0e+21\nf: "x: \\"y\\""\ng: true\nh: null\n',
    );
    expect(toYaml({ top: { k: 1, l: [{ function: 'kl', weight: 0.5 }, 'two'], e: [] } })).toBe(
      'top:\n  k: 1\n  l:\n    - function: "kl"\n      weight: 0.5\n    - "two"\n  e: []\n',
    );
    expect(() => toYaml({ 'bad key': 1 })).toThrow(/not a plain word/);
  });
});

// ------------------------------------------------------------------------- real readers: PyYAML and pyarrow

function pythonWith(mods: string): string | undefined {
  const r = spawnSync('python3', ['-c', `import ${mods}`], { encoding: 'utf8' });
  return r.status === 0 ? 'python3' : undefined;
}
const PY = pythonWith('yaml, pyarrow');
// Required, not optional: .ci/run installs PyYAML and pyarrow.
describe('Python readers', () => {
  it('are installed', () => expect(PY, 'python3 with PyYAML and pyarrow is required: python3 -m pip install pyyaml pyarrow (.ci/run does)').toBeDefined());
  it('PyYAML parses the configs to the intended values; pyarrow reads the JSONL and the top-k Parquet', async () => {
    const { store, ds } = await fixture();
    const { files } = await scaleoutExport(store, ds.id, { studentModel: 'org/student' });
    const dir = mkdtempSync(join(tmpdir(), 'scaleout-'));
    try {
      for (const f of files) {
        mkdirSync(dirname(join(dir, f.path)), { recursive: true });
        writeFileSync(join(dir, f.path), f.bytes);
      }
      const script = `
import json, sys, yaml, pyarrow.json as pj, pyarrow.parquet as pq
d = sys.argv[1]
out = {k: yaml.safe_load(open(d + '/' + k + '.yaml')) for k in ['trl-sft', 'trl-dpo', 'distillkit']}
out['sft_type'] = str(pj.read_json(d + '/sft/train.jsonl').schema.field('messages').type)
out['dpo_cols'] = pj.read_json(d + '/dpo/train.jsonl').schema.names
t = pq.read_table(d + '/teacher-topk/train.parquet')
out['topk_schema'] = {f.name: str(f.type) for f in t.schema}
out['topk_first'] = t.to_pylist()[0]['topk_tokens'][0]
print(json.dumps(out))
`;
      const r = spawnSync(PY!, ['-c', script, dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out['trl-sft']).toMatchObject({ model_name_or_path: 'org/student', dataset_name: './sft', learning_rate: 2e-5, max_length: 1024, packing: false, chat_template_path: './chat_template.jinja' });
      expect(typeof out['trl-sft'].learning_rate).toBe('number');
      expect(out['trl-dpo']).toMatchObject({ model_name_or_path: './out/sft', dataset_name: './dpo', beta: 0.1, learning_rate: 5e-7, loss_type: 'sigmoid' });
      expect(out.distillkit).toMatchObject({
        model: 'org/student', dataset: { train_dataset: { repo_id: './sft', split: 'train' } }, teacher: { kind: 'hf', path: 'teacher-7b' },
        loss_functions: [{ function: 'cross_entropy', weight: 0.5 }, { function: 'kl', weight: 0.5, temperature: 1, missing_probability_handling: 'zero' }],
      });
      expect(out.sft_type).toBe('list<item: struct<role: string, content: string>>');
      expect(out.dpo_cols).toEqual(['prompt', 'chosen', 'rejected']);
      expect(out.topk_schema).toMatchObject({
        turn: 'int32', num_tokens: 'int32', topk_ids: 'list<element: list<element: int32>>',
        topk_logprobs: 'list<element: list<element: float>>', topk_tokens: 'list<element: list<element: string>>',
      });
      const rows = await parquetRows(files, 'teacher-topk/train.parquet');
      expect(out.topk_first).toEqual(rows[0]!.topk_tokens[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000); // spawns Python: seconds on a loaded machine
});

// ------------------------------------------------------------- the real TRL CLI (torch + trl in .venv-torch)

// `.ci/run` installs trl into .venv-torch (tests/support/torch-python.ts finds it, or $DISTILL_TORCH_PYTHON): TRL's
// training scripts train 2 CPU steps from each generated config on the export — SFT (messages, and prompt-completion),
// on-policy distillation (trl-distillation.yaml: a tiny random teacher on the same tokenizer) and DPO — from tiny random
// Llamas with our BPE tokenizer, written by transformers here (offline: no Hub). A file TRL rejects fails the test.
describe('TRL CLI on the export', () => {
  it('trl sft (messages and prompt-completion), trl distillation and trl dpo train from the generated configs', async () => {
    const python = resolve(torchPython()); // the commands run in the export's folder
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'run' });
    const recs: RecordInput[] = Array.from({ length: 8 }, (_, i) => ({
      key: `k${i}`, provenance: provenance(),
      messages: [...(i % 3 === 0 ? [m('system', 'Be brief.')] : []), m('user', `What is ${i} plus ${i}?`), m('assistant', `It is ${2 * i}.`)],
    }));
    await store.putRecords(ds.id, recs);
    await store.putPairs(ds.id, Array.from({ length: 4 }, (_, i) => ({ key: `p${i}`, prompt: [m('user', `Say ${i}`)], chosen: `${i}`, rejected: `no ${i}`, provenance: provenance() })));
    const { files } = await scaleoutExport(store, ds.id, { sftFormat: 'both', teacherModel: './teacher', training: { maxLength: 64, batchSize: 2 } });
    expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(['trl-sft.yaml', 'trl-distillation.yaml', 'trl-dpo.yaml']));
    const dir = mkdtempSync(join(tmpdir(), 'trl-'));
    try {
      for (const f of files) {
        mkdirSync(dirname(join(dir, f.path)), { recursive: true });
        writeFileSync(join(dir, f.path), f.bytes);
      }
      const tok = trainBpe(recs.flatMap((r) => r.messages.map((x) => `<|${x.role}|>\n${x.content}\n`)), { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
      for (const d of ['model', 'teacher']) {
        mkdirSync(join(dir, d));
        writeFileSync(join(dir, d, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
        writeFileSync(join(dir, d, 'tokenizer_config.json'), JSON.stringify(tok.tokenizerConfigJson({ bos: '<|endoftext|>', eos: '<|endoftext|>', pad: '<|endoftext|>', modelMaxLength: 64 })));
      }
      const env = { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false', WANDB_DISABLED: 'true' };
      const py = (code: string) => spawnSync(python, ['-c', code], { cwd: dir, env, encoding: 'utf8', maxBuffer: 1 << 28 });
      // The scripts `trl sft|distillation|dpo --config X` runs (trl/scripts/<command>.py: its parser reads the same
      // config and flags, then its main trains), called in one Python process — the CLI would start each under
      // accelerate launch in a new one, and importing torch + transformers + trl is most of a run's time on 2 cores.
      const common = ['--max_steps', '2', '--bf16', 'false', '--use_cpu', 'true', '--save_strategy', 'no'];
      const runs = [
        ['sft', '--config', 'trl-sft.yaml'], // writes ./out/sft (with the chat template), which distillation and DPO start from
        ['sft', '--config', 'trl-sft.yaml', '--dataset_name', './sft-prompt-completion', '--output_dir', './out/pc'],
        ['distillation', '--config', 'trl-distillation.yaml', '--max_completion_length', '8', '--gradient_checkpointing', 'false'],
        ['dpo', '--config', 'trl-dpo.yaml'],
      ].map((a) => [...a, ...common]);
      const t0 = Date.now();
      const r = py(`
import importlib, json, sys, time, traceback
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback, Trainer
t = PreTrainedTokenizerFast.from_pretrained('./model')
for d, seed, hidden in (('./model', 1, 32), ('./teacher', 2, 64)):
  torch.manual_seed(seed)
  LlamaForCausalLM(LlamaConfig(vocab_size=len(t), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=128, eos_token_id=t.eos_token_id, pad_token_id=t.pad_token_id)).save_pretrained(d)
steps = []
class Count(TrainerCallback):
  def on_train_end(self, args, state, control, **kw): steps.append(state.global_step)
orig = Trainer.__init__
def init(self, *a, **k):
  orig(self, *a, **k)
  self.add_callback(Count())
Trainer.__init__ = init
for argv in ${JSON.stringify(runs)}:
  t0, n = time.time(), len(steps)
  try:
    script = importlib.import_module('trl.scripts.' + argv[0])
    parsed = script.make_parser().parse_args_and_config(argv[1:])
    script.main(*parsed)
    code = 0
  except SystemExit as e:
    code = 'exit %s' % e.code
  except Exception:
    traceback.print_exc()
    code = 'exception'
  print('TRL-RUN ' + json.dumps({'run': ' '.join(argv[:3]), 'code': code, 'steps': steps[n:], 's': round(time.time() - t0, 1)}), flush=True)
`);
      const done = r.stdout.split('\n').filter((l) => l.startsWith('TRL-RUN ')).map((l) => JSON.parse(l.slice(8)) as { run: string; code: unknown; steps: number[]; s: number });
      console.log(`[trl] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(done)}`);
      expect(r.status, `${r.error?.message ?? ''} (no trl? bash .ci/run installs it: .venv-torch/bin/pip install trl peft)\n${r.stderr.slice(-4000)}`).toBe(0);
      expect(done.map((d) => d.run), r.stderr.slice(-4000)).toEqual(runs.map((a) => a.slice(0, 3).join(' ')));
      // Each ran to its end without an error, and its trainer took exactly the 2 steps asked for.
      for (const d of done) expect({ run: d.run, code: d.code, steps: d.steps }, r.stderr.slice(-4000)).toEqual({ run: d.run, code: 0, steps: [2] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
