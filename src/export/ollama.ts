// Ollama bundle: the GGUF plus a `Modelfile` that `ollama create NAME -f Modelfile` accepts:
//   FROM ./model.gguf
//   TEMPLATE """…"""        the model's chat template, rewritten as the Go template Ollama renders prompts with
//   PARAMETER stop "…"      the tokens that close an assistant turn, and the end-of-sequence token
//   PARAMETER num_ctx N     the context the student was trained at; temperature / top_p defaults
//
// The chat template is Jinja (tokenizer_config.json); Ollama wants Go's text/template over .System and .Messages.
// No general translation exists, so the template is *probed*: rendered with marker contents for a conversation
// (user, assistant, user, assistant, user), for the same with a system message, and with and without the
// generation prompt, then cut at the markers into constant pieces — the text before and after a user message, an
// assistant message, the system message, the generation prompt. The Go template replays those pieces. Pieces that
// are adjacent (one turn's closing, the next turn's opening) may be split anywhere between them: the output is the
// same. The pieces are then checked: replayed for several conversations they must give exactly what the Jinja
// template renders; a template they cannot replay (one that folds the system prompt into the first user turn, one
// whose turns differ by position) gets no TEMPLATE line, and the Modelfile says why (Ollama then falls back to its
// own detection from the GGUF's tokenizer.chat_template). A leading BOS the template writes is dropped when the
// GGUF adds one itself (tokenizer.ggml.add_bos_token), as llama.cpp would otherwise read two.
// Grammar: Ollama's docs/modelfile.md (instructions, "…" and """…""" arguments, # comments); tests/support/modelfile.ts
// parses it and evaluates the Go template independently (tests/unit/ollama-modelfile.test.ts).
import { commonSuffix, renderChat, turnClosers, type TemplateMessage } from '../tokenizer/chat-template.ts';
import { exportView, specialTokens, type ExportFile, type ExportInput } from './types.ts';

/** The constant text around each kind of message, as the chat template renders it. */
export interface TemplatePieces {
  /** Before the first message when there is no system prompt (a BOS, a default system prompt). */
  head: string;
  sysPre: string;
  sysPost: string;
  userPre: string;
  userPost: string;
  asstPre: string;
  asstPost: string;
  /** The generation prompt (add_generation_prompt), after the last user message. */
  gen: string;
}

const MARK = (k: string) => `XQ${k}QX`;

function cut(text: string, marks: string[], what: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (const m of marks) {
    const i = text.indexOf(m, at);
    if (i < 0 || text.indexOf(m, i + m.length) >= 0) throw new Error(`${what}: the template does not show each message once`);
    out.push(text.slice(at, i));
    at = i + m.length;
  }
  out.push(text.slice(at));
  return out;
}

const msg = (role: string, content: string): TemplateMessage => ({ role, content });

/** The renderings of `template` (special tokens as the tokenizer names them), less a leading `dropBos`. */
function renderer(template: string, special: Record<string, string | null>, dropBos?: string | null) {
  const opts = { special: Object.fromEntries(Object.entries(special).filter(([, v]) => v !== null)) as Record<string, string> };
  return (m: readonly TemplateMessage[], gen: boolean) => {
    const text = renderChat(template, m, { ...opts, addGenerationPrompt: gen });
    return dropBos && text.startsWith(dropBos) ? text.slice(dropBos.length) : text;
  };
}

/**
 * The pieces of `template`, or an Error saying why it has none. `dropBos`: the BOS text llama.cpp adds itself (the
 * GGUF's add_bos_token), taken off the start of every rendering so the template does not write it a second time.
 */
export function templatePieces(template: string, special: Record<string, string | null>, dropBos?: string | null, specials: readonly string[] = []): TemplatePieces {
  const render = renderer(template, special, dropBos);
  const conv = [msg('user', MARK('U1')), msg('assistant', MARK('A1')), msg('user', MARK('U2')), msg('assistant', MARK('A2')), msg('user', MARK('U3'))];
  const withGen = render(conv, true), without = render(conv, false);
  if (!withGen.startsWith(without)) throw new Error('the generation prompt is not added at the end');
  const gen = withGen.slice(without.length);
  const [p0, p1, p2, p3, p4, p5] = cut(withGen, conv.map((m) => m.content), 'a conversation');
  if (p1 !== p3 || p2 !== p4) throw new Error('its turns are not rendered alike (the pieces depend on the position)');
  if (!p5!.endsWith(gen)) throw new Error('the last user turn does not end with the generation prompt');
  const userPost = p5!.slice(0, p5!.length - gen.length);
  if (!p1!.startsWith(userPost)) throw new Error('a user turn closes differently before an answer');
  const asstPre = p1!.slice(userPost.length);
  // p2 = asstPost + userPre and p0 = head + userPre: userPre is what the two share at their end — less the part of a
  // special token the cut would fall inside (the output is the same; the pieces read as the template's).
  let shared = commonSuffix(p0!, p2!);
  for (let moved = true; moved;) {
    moved = false;
    for (const sp of specials) {
      const cutAt = p2!.length - shared;
      for (let i = p2!.indexOf(sp); i >= 0 && i < cutAt; i = p2!.indexOf(sp, i + 1)) {
        if (i + sp.length > cutAt) { shared = p2!.length - (i + sp.length); moved = true; }
      }
    }
  }
  const userPre = p2!.slice(p2!.length - shared), asstPost = p2!.slice(0, p2!.length - shared), head = p0!.slice(0, p0!.length - shared);
  const sys = [msg('system', MARK('S')), msg('user', MARK('U1'))];
  const [s0, s1, s2] = cut(render(sys, true), sys.map((m) => m.content), 'a system prompt');
  if (s2 !== p5) throw new Error('a conversation with a system prompt ends differently');
  if (!s1!.endsWith(userPre)) throw new Error('it folds the system prompt into the first user turn');
  return { head, sysPre: s0!, sysPost: s1!.slice(0, s1!.length - userPre.length), userPre, userPost, asstPre, asstPost, gen };
}

/** What the pieces give for `messages` (a system message first at most), the way the Go template replays them. */
export function replayPieces(p: TemplatePieces, messages: readonly TemplateMessage[], gen: boolean): string {
  const system = messages[0]?.role === 'system' ? messages[0].content : '';
  let out = system ? p.sysPre + system + p.sysPost : p.head;
  const rest = messages.filter((m) => m.role !== 'system');
  rest.forEach((m, i) => {
    const last = i === rest.length - 1;
    if (m.role === 'user') out += p.userPre + m.content + p.userPost + (last && gen ? p.gen : '');
    else if (m.role === 'assistant') out += p.asstPre + m.content + (last ? '' : p.asstPost);
  });
  return out;
}

/** Conversations the pieces must replay exactly (closing assistant turns are left open, as Ollama continues them). */
const CHECKS: TemplateMessage[][] = [
  [msg('user', 'Hi')],
  [msg('system', 'Be brief.'), msg('user', 'Name a colour.')],
  [msg('user', 'What is 2 + 2?'), msg('assistant', '4.'), msg('user', 'And 3 + 3?')],
  [msg('system', 'Antworte auf Deutsch.'), msg('user', 'Hallo'), msg('assistant', 'Hallo!'), msg('user', 'Danke\nzweite Zeile')],
];

/** Text as Go template text: only `{{` is special there. */
const goText = (s: string) => s.replaceAll('{{', '{{ "{{" }}');

/** The Go template (one line: no trim markers, so no piece loses its whitespace). */
export function goTemplate(p: TemplatePieces): string {
  const t = goText;
  return `{{ if .System }}${t(p.sysPre)}{{ .System }}${t(p.sysPost)}{{ else }}${t(p.head)}{{ end }}` +
    '{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}' +
    `{{ if eq .Role "user" }}${t(p.userPre)}{{ .Content }}${t(p.userPost)}{{ if $last }}${t(p.gen)}{{ end }}` +
    `{{ else if eq .Role "assistant" }}${t(p.asstPre)}{{ .Content }}{{ if not $last }}${t(p.asstPost)}{{ end }}{{ end }}{{ end }}`;
}

/** A Modelfile string argument. Ollama's parser has no escapes: it trims the argument and removes one pair of quotes,
 *  """ or ", so a value holding " is written in triple quotes (one holding """ cannot be written). */
const quoted = (s: string) => (s.includes('"') ? `"""${s}"""` : `"${s}"`);

export interface ModelfileOptions {
  /** The GGUF's path beside the Modelfile. */
  gguf: string;
  /** Sampling defaults written as PARAMETERs. */
  temperature?: number;
  topP?: number;
}

export interface Modelfile {
  text: string;
  /** Why there is no TEMPLATE line (the chat template could not be replayed), else undefined. */
  noTemplate?: string;
  stops: string[];
}

/** The Modelfile of an export whose GGUF is `o.gguf`; `addsBos`: the GGUF makes llama.cpp add a BOS itself. */
export function ollamaModelfile(input: ExportInput, o: ModelfileOptions, addsBos: boolean): Modelfile {
  const x = exportView(input);
  const s = specialTokens(x);
  const template = x.chatTemplate ?? x.tokenizer.chatTemplate;
  const lines = ['# Ollama: ollama create NAME -f Modelfile && ollama run NAME', `FROM ./${o.gguf}`];
  let noTemplate: string | undefined;
  const stops = new Set<string>();
  if (template === undefined) {
    lines.push('TEMPLATE {{ .Prompt }}');
  } else {
    try {
      const special = { bos: s.bos, eos: s.eos, pad: s.pad };
      const dropBos = addsBos ? s.bos : null;
      const p = templatePieces(template, special, dropBos, [...x.tokenizer.specialTokens]);
      const render = renderer(template, special, dropBos);
      for (const c of CHECKS) {
        if (replayPieces(p, c, true) !== render(c, true)) throw new Error(`a ${c.length}-message conversation is rendered differently`);
      }
      const go = goTemplate(p);
      if (go.includes('"""')) throw new Error('it contains """');
      lines.push(`TEMPLATE """${go}"""`);
    } catch (e) {
      noTemplate = `the chat template cannot be written as an Ollama template: ${(e as Error).message}`;
      lines.push(`# No TEMPLATE: ${noTemplate.replaceAll('\n', ' ')}; Ollama detects one from the GGUF's chat template if it knows it.`);
    }
    try {
      for (const c of turnClosers(template, x.tokenizer)) stops.add(c);
    } catch { /* a template that cannot render a turn has no closer to stop at; the EOS still stops */ }
  }
  if (s.eos) stops.add(s.eos);
  // A stop that the argument's trimming would change, or one that cannot be quoted, is left out.
  const written = [...stops].filter((st) => st !== '' && st.trim() === st && !st.includes('"""'));
  for (const st of written) lines.push(`PARAMETER stop ${quoted(st)}`);
  lines.push(`PARAMETER num_ctx ${x.config.maxSeqLen}`);
  lines.push(`PARAMETER temperature ${o.temperature ?? 0.7}`, `PARAMETER top_p ${o.topP ?? 0.9}`);
  return { text: lines.join('\n') + '\n', noTemplate, stops: written };
}

/** `Modelfile` beside the GGUF file `gguf` (its bytes tell whether llama.cpp adds a BOS). */
export function ollamaFiles(x: ExportInput, gguf: ExportFile, addsBos: boolean): ExportFile[] {
  const m = ollamaModelfile(x, { gguf: gguf.path }, addsBos);
  return [gguf, { path: 'Modelfile', bytes: new TextEncoder().encode(m.text) }];
}
