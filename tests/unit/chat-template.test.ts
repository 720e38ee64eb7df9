// Chat templates through @huggingface/jinja (src/tokenizer/chat-template.ts) against transformers'
// apply_chat_template (PyTorch venv) and transformers.js's, for the real Qwen3, Llama-3 and Gemma-3 templates and
// our SIMPLE_CHAT_TEMPLATE: the same text for every conversation, with and without the generation prompt; then
// the training side (src/engine/runs/format.ts): records rendered with the template encode to the ids transformers
// gives the rendered text, the targets are exactly each answer and its closing token (and what the template puts
// between the generation prompt and the answer), prompts are where training turns start, pairs, stop ids.
import { beforeAll, describe, expect, it } from 'vitest';
import * as transformers from '@huggingface/transformers';
import { buildRunData } from '../../src/engine/runs/data.ts';
import { chatTemplateFor, encodeRecord, promptIds, promptText, stopIds, type TemplateFormat } from '../../src/engine/runs/format.ts';
import { SIMPLE_CHAT_TEMPLATE } from '../../src/export/dataset-text.ts';
import type { ChatMessage, StoredPair, StoredRecord } from '../../src/store/schema.ts';
import { chatSegments, renderChat, turnClosers } from '../../src/tokenizer/chat-template.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { FAMILIES, familyFiles, type Family, type FamilyFiles } from '../support/fuzz-text.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });
const CONVERSATIONS: ChatMessage[][] = [
  [m('user', 'Hi')],
  [m('user', 'What is 2 + 2?'), m('assistant', '4.')],
  [m('system', 'You are terse.'), m('user', 'Name a colour.'), m('assistant', 'Blue')],
  [m('user', 'Hello!'), m('assistant', 'Hi, how can I help?'), m('user', 'Translate "cat" to German.'), m('assistant', 'Katze')],
  [m('system', 'Antworte auf Deutsch.'), m('user', '  Grüße aus München 🥨\n\nzweite Zeile  '), m('assistant', '\nGern geschehen — 你好!\n'), m('user', 'Danke')],
  [m('user', 'Think first.'), m('assistant', '<think>\nIt is simple.\n</think>\n\nYes.')],
];

const PY = `
import json, sys
from transformers import AutoTokenizer
req = json.load(sys.stdin)
out = {}
for name, d in req['dirs'].items():
    tok = AutoTokenizer.from_pretrained(d)
    r = {'text': [], 'simple': [], 'ids': []}
    for conv in req['conversations']:
        for gen in (False, True):
            t = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            r['text'].append(t)
            r['simple'].append(tok.apply_chat_template(conv, chat_template=req['simple'], tokenize=False, add_generation_prompt=gen))
            r['ids'].append(tok(t, add_special_tokens=False)['input_ids'])
    out[name] = r
print(json.dumps(out))
`;

const files = {} as Record<Family, FamilyFiles>;
const toks = {} as Record<Family, HfTokenizer>;
let py: Record<Family, { text: string[]; simple: string[]; ids: number[][] }>;

beforeAll(() => {
  for (const f of FAMILIES) {
    files[f] = familyFiles(f);
    toks[f] = new HfTokenizer(files[f].json, files[f].config);
  }
  py = runPythonJson(torchPython(), PY, { dirs: Object.fromEntries(FAMILIES.map((f) => [f, files[f].dir])), conversations: CONVERSATIONS, simple: SIMPLE_CHAT_TEMPLATE });
}, 300_000);

const cases = CONVERSATIONS.flatMap((conv, c) => [false, true].map((gen) => ({ conv, gen, i: 2 * c + (gen ? 1 : 0) })));

describe.each(FAMILIES)('%s chat template', (family) => {
  it("renders every conversation as transformers' and transformers.js's apply_chat_template do", () => {
    const tok = toks[family];
    const name = String(files[family].config.tokenizer_class).replace(/Fast$/, '');
    const Cls = ((transformers as unknown as Record<string, unknown>)[name] ?? transformers.PreTrainedTokenizer) as typeof transformers.PreTrainedTokenizer;
    const tjs = new Cls(files[family].json, files[family].config);
    for (const { conv, gen, i } of cases) {
      const ours = renderChat(tok.chatTemplate!, conv, { addGenerationPrompt: gen, special: tok.namedSpecial });
      expect(ours, `${JSON.stringify(conv)} gen=${gen}`).toBe(py[family].text[i]);
      expect(tjs.apply_chat_template(conv, { tokenize: false, add_generation_prompt: gen })).toBe(ours);
      expect(renderChat(SIMPLE_CHAT_TEMPLATE, conv, { addGenerationPrompt: gen, special: tok.namedSpecial })).toBe(py[family].simple[i]);
    }
  }, 60_000);

  it('trains on exactly the answers and their closings, in the ids transformers gives the rendered text', () => {
    const tok = toks[family];
    const format: TemplateFormat = { kind: 'template', template: tok.chatTemplate! };
    const eos = tok.tokenToId(tok.namedSpecial.eos!)!;
    const closers = turnClosers(format.template, tok);
    expect(closers).toEqual([{ qwen3: '<|im_end|>', llama3: '<|eot_id|>', gemma3: '<end_of_turn>' }[family]]);
    for (const { conv, gen, i } of cases) {
      if (gen) continue;
      const enc = encodeRecord(conv, format, tok, eos); // every family closes its answers: no end-of-text added
      expect(tok.decode(enc.tokens)).toBe(py[family].text[i]);
      // Segment by segment = transformers' ids of the whole text, except where a whole-text token would straddle a
      // prompt/answer boundary (an answer starting with "\n" after Qwen's "assistant\n": "\n\n" is one token there;
      // a model generating after that prompt writes "\n" then "\n", as the student is trained).
      const straddles = conv.some((x) => x.role === 'assistant' && /^\s|\s$/.test(x.content)) && family === 'qwen3';
      if (!straddles) expect([...enc.tokens], JSON.stringify(conv)).toEqual(py[family].ids[i]);
      else expect(enc.tokens.length).toBe(py[family].ids[i]!.length + 1);
      // Each answer's span decodes to its content as the template shows it (trimmed where the template trims).
      for (const a of enc.answers) {
        const shown = tok.decode(enc.tokens.subarray(a.start, a.end));
        expect(conv[a.turn]!.content.includes(shown.trim()) || shown.includes(conv[a.turn]!.content.trim()), shown).toBe(true);
        expect([...enc.learn.subarray(a.start, a.end)].every((x) => x === 1)).toBe(true);
      }
      // The targets: the answers and a closer after each; nothing of the user or system turns.
      const learned = [...enc.tokens].filter((_, j) => enc.learn[j] === 1);
      const text = tok.decode(learned);
      for (const msg of conv) if (msg.role !== 'assistant') expect(text.includes(msg.content.trim()), `${family}: ${msg.content}`).toBe(false);
      expect(learned.filter((id) => id === tok.tokenToId(closers[0]!)).length).toBe(conv.filter((x) => x.role === 'assistant').length);
      // Every turn is trained right after the prompt a model is asked with.
      conv.forEach((msg, t) => {
        if (msg.role !== 'assistant') return;
        const prompt = promptIds(conv.slice(0, t), format, tok);
        expect([...enc.tokens.subarray(0, prompt.length)]).toEqual(prompt);
        expect([enc.learn[prompt.length - 1], enc.learn[prompt.length]]).toEqual([0, 1]);
      });
    }
    expect(stopIds(format, tok, eos)).toEqual([...new Set([eos, tok.tokenToId(closers[0]!)!])]);
    expect(chatTemplateFor(format)).toBe(tok.chatTemplate);
    expect(promptText([m('user', 'Hi')], format, tok)).toBe(py[family].text[1]);
    expect(() => promptText([m('user', 'Hi'), m('assistant', 'Yo')], format, tok)).toThrow('already hold an assistant answer');
  }, 60_000);
});

describe('chat-template formats in a run', () => {
  it("Qwen3's empty think block is a target when the prompt does not hold it, context when it does", () => {
    const tok = toks.qwen3;
    const conv = [m('user', 'Hi'), m('assistant', 'Yo')];
    const on = chatSegments(tok.chatTemplate!, conv, tok);
    expect(on.map((s) => [s.text, s.learn])).toEqual([
      ['<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', false], ['<think>\n\n</think>\n\n', true], ['Yo', true], ['<|im_end|>', true], ['\n', false],
    ]);
    const off = chatSegments(tok.chatTemplate!, conv, tok, { extra: { enable_thinking: false } });
    expect(off.map((s) => [s.text, s.learn])).toEqual([
      ['<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n', false], ['Yo', true], ['<|im_end|>', true], ['\n', false],
    ]);
    expect(off.map((s) => s.text).join('')).toBe(on.map((s) => s.text).join(''));
  });

  it('a template that leaves the last answer unclosed gets end-of-text after it; one that hides an answer trains none of it', () => {
    const tok = toks.qwen3;
    const plain: TemplateFormat = { kind: 'template', template: "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}" };
    const eos = tok.tokenToId('<|endoftext|>')!;
    const enc = encodeRecord([m('user', 'Hi'), m('assistant', 'Yo')], plain, tok, eos);
    expect(enc.tokens.at(-1)).toBe(eos);
    expect(enc.learn.at(-1)).toBe(1);
    expect(tok.decode([...enc.tokens].filter((_, j) => enc.learn[j] === 1))).toBe('Yo<|endoftext|>');
    const hiding: TemplateFormat = { kind: 'template', template: "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}" };
    expect(encodeRecord([m('user', 'Hi'), m('assistant', 'Yo')], hiding, tok, eos).learn.every((x) => x === 0)).toBe(true);
    expect(() => renderChat('{% for %}', [])).toThrow(/chat template: cannot parse it/);
  });

  it('buildRunData packs template records and encodes pairs with the template', async () => {
    const tok = toks.llama3;
    const format: TemplateFormat = { kind: 'template', template: tok.chatTemplate! };
    const eos = tok.tokenToId('<|eot_id|>')!;
    const records = Array.from({ length: 6 }, (_, i) => ({ id: i + 1, datasetId: 'd', messages: [m('user', `Question ${i}?`), m('assistant', `Answer ${i}.`)] }) as unknown as StoredRecord);
    const pairs = [{ id: 1, datasetId: 'd', prompt: [m('user', 'Pick one.')], chosen: 'Good', rejected: 'Bad' }] as unknown as StoredPair[];
    const data = await buildRunData(records, pairs, { format, tok, eos, T: 16, heldOutEvery: 3 });
    expect(data.stats.trainRecords).toBe(4);
    expect(data.rows.length).toBeGreaterThan(0);
    const p = data.pairs[0]!;
    expect(tok.decode(p.prompt)).toBe(renderChat(format.template, pairs[0]!.prompt, { addGenerationPrompt: true, special: tok.namedSpecial }));
    expect(tok.decode(p.chosen)).toBe('Good<|eot_id|>');
    expect(tok.decode(p.rejected)).toBe('Bad<|eot_id|>');
  });
});
