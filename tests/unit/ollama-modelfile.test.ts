// The Ollama bundle (src/export/ollama.ts): its Modelfile read by an independent reader of Ollama's grammar, and its
// TEMPLATE executed by an independent Go-template evaluator (tests/support/modelfile.ts) over Ollama's values: for
// the real Qwen3 and Llama-3 templates and our simple one, every conversation renders to exactly what the model's
// Jinja template renders (less the BOS llama.cpp adds itself); stop tokens are the turn closers and EOS; Gemma-3's
// template (system prompt folded into the first user turn) gets no TEMPLATE and says why; the bundle's GGUF is the
// Q4_K_M export (what Ollama pulls by default) byte for byte.
import { describe, expect, it } from 'vitest';
import { exportModel } from '../../src/export/index.ts';
import { ggufAddsBos } from '../../src/export/gguf-vocab.ts';
import { ollamaModelfile } from '../../src/export/ollama.ts';
import { SIMPLE_CHAT_TEMPLATE } from '../../src/export/dataset-text.ts';
import type { ExportInput } from '../../src/export/types.ts';
import { makeConfig } from '../../src/model/config.ts';
import { renderChat } from '../../src/tokenizer/chat-template.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { familyFiles, type Family } from '../support/fuzz-text.ts';
import { executeGoTemplate, ollamaValues, parseModelfile } from '../support/modelfile.ts';
import { tinyTeacher } from '../support/tiny-teacher.ts';

type M = { role: string; content: string };
const m = (role: string, content: string): M => ({ role, content });
const CONVERSATIONS: M[][] = [
  [m('user', 'Hi')],
  [m('system', 'You are terse.'), m('user', 'Name a colour.')],
  [m('user', 'What is 2 + 2?'), m('assistant', '4.'), m('user', 'And 3 + 3?')],
  [m('user', 'Hello!'), m('assistant', 'Hi, how can I help?'), m('user', 'Translate "cat".'), m('assistant', 'Katze'), m('user', 'Danke')],
  [m('system', 'Antworte auf Deutsch.'), m('user', 'Grüße aus München 🥨\n\nzweite Zeile'), m('assistant', 'Gern — 你好!'), m('user', '{{ .System }} is not a field here')],
];

/** A family's tokenizer; `withBos`: Llama-3 with the post-processor of Meta's own tokenizer.json, which puts
 *  <|begin_of_text|> before every text (the npm copy has none) — so the GGUF has llama.cpp add the BOS. */
function familyInput(f: Family, withBos = false): ExportInput {
  const files = familyFiles(f);
  if (withBos) {
    const bos = '<|begin_of_text|>', seq = (id: string, type_id: number) => ({ Sequence: { id, type_id } }), sp = (type_id: number) => ({ SpecialToken: { id: bos, type_id } });
    files.json = { ...files.json, post_processor: { type: 'TemplateProcessing', single: [sp(0), seq('A', 0)], pair: [sp(0), seq('A', 0), sp(1), seq('B', 1)], special_tokens: { [bos]: { id: bos, ids: [128000], tokens: [bos] } } } };
  }
  const tokenizer = new HfTokenizer(files.json, files.config);
  const config = makeConfig({ vocabSize: tokenizer.vocabSize, hidden: 8, layers: 1, heads: 1, kvHeads: 1, headDim: 8, intermediate: 8, maxSeqLen: 96 });
  return { config, params: new Float32Array(0), tokenizer };
}

/** What the model's own template gives, less a leading BOS when llama.cpp adds one. */
function expected(x: ExportInput, conv: M[]): string {
  const tok = x.tokenizer;
  const text = renderChat(x.chatTemplate ?? tok.chatTemplate!, conv, { addGenerationPrompt: true, special: tok.namedSpecial ?? { bos: '<|endoftext|>', eos: '<|endoftext|>' } });
  const bos = tok.namedSpecial?.bos;
  return ggufAddsBos(x) && bos && text.startsWith(bos) ? text.slice(bos.length) : text;
}

describe('Ollama Modelfile', () => {
  it.each([['qwen3', false], ['llama3', false], ['llama3', true]] as const)('%s (a BOS-adding tokenizer: %s): the TEMPLATE, run as Ollama runs it, renders every conversation as the Jinja template does', (f, withBos) => {
    const x = familyInput(f, withBos);
    expect(ggufAddsBos(x)).toBe(withBos);
    const made = ollamaModelfile(x, { gguf: 'model.gguf' }, ggufAddsBos(x));
    expect(made.noTemplate).toBeUndefined();
    const mf = parseModelfile(made.text);
    expect(mf.from).toBe('./model.gguf');
    expect(mf.template).toBeDefined();
    for (const conv of CONVERSATIONS) {
      expect(executeGoTemplate(mf.template!, ollamaValues(conv)), JSON.stringify(conv)).toBe(expected(x, conv));
    }
    const stops = mf.parameters.filter(([k]) => k === 'stop').map(([, v]) => v);
    expect(stops).toEqual({ qwen3: ['<|im_end|>'], llama3: ['<|eot_id|>', '<|end_of_text|>'] }[f]);
    expect(Object.fromEntries(mf.parameters.filter(([k]) => k !== 'stop'))).toEqual({ num_ctx: '96', temperature: '0.7', top_p: '0.9' });
    // With the BOS added by llama.cpp, the template must not write it too.
    if (withBos) expect(mf.template!.startsWith('{{ if .System }}<|begin_of_text|>')).toBe(false);
  }, 60_000);

  it('gemma3: a template that folds the system prompt into the user turn gets no TEMPLATE, and the file says why', () => {
    const x = familyInput('gemma3');
    const made = ollamaModelfile(x, { gguf: 'model.gguf' }, ggufAddsBos(x));
    expect(made.noTemplate).toMatch(/folds the system prompt into the first user turn/);
    const mf = parseModelfile(made.text);
    expect(mf.template).toBeUndefined();
    expect(made.text).toMatch(/^# No TEMPLATE: the chat template cannot be written as an Ollama template/m);
    expect(mf.parameters.filter(([k]) => k === 'stop').map(([, v]) => v)).toEqual(['<end_of_turn>']);
  }, 60_000);

  it('the bundle from exportModel: the Q4_K_M GGUF byte for byte and a Modelfile that replays our simple template', () => {
    const t = tinyTeacher();
    const x: ExportInput = { config: t.config, params: t.params, tokenizer: t.tokenizer, chatTemplate: SIMPLE_CHAT_TEMPLATE };
    const files = exportModel(x, 'ollama');
    expect(files.map((f) => f.path).sort()).toEqual(['Modelfile', 'model.gguf']);
    const gguf = exportModel(x, 'gguf-q4_k_m')[0]!;
    expect(Buffer.from(files.find((f) => f.path === 'model.gguf')!.bytes).equals(Buffer.from(gguf.bytes))).toBe(true);
    const mf = parseModelfile(new TextDecoder().decode(files.find((f) => f.path === 'Modelfile')!.bytes));
    expect(mf.from).toBe('./model.gguf');
    for (const conv of CONVERSATIONS) {
      expect(executeGoTemplate(mf.template!, ollamaValues(conv))).toBe(expected(x, conv));
    }
    expect(mf.parameters.filter(([k]) => k === 'stop').map(([, v]) => v)).toEqual(['<|endoftext|>']);
  });

  it('a model without a chat template passes the prompt through', () => {
    const t = tinyTeacher();
    const mf = parseModelfile(ollamaModelfile({ config: t.config, params: t.params, tokenizer: t.tokenizer }, { gguf: 'model.gguf' }, false).text);
    expect(mf.template).toBe('{{ .Prompt }}');
  });

  it('the reader is strict: no FROM, an unknown instruction and an open quote are refused', () => {
    expect(() => parseModelfile('PARAMETER num_ctx 8\n')).toThrow(/no FROM/);
    expect(() => parseModelfile('FROM ./a.gguf\nFOO bar\n')).toThrow(/not an instruction/);
    expect(() => parseModelfile('FROM ./a.gguf\nTEMPLATE """{{ .Prompt }}\n')).toThrow(/never closed/);
    expect(parseModelfile('# c\nfrom ./a.gguf\nparameter stop "<|x|>"\nTEMPLATE """a\n b """\n').template).toBe('a\n b ');
    expect(executeGoTemplate('{{- if .A }} x {{- else }}y{{ end -}} !', { A: true })).toBe(' x!');
  });
});
