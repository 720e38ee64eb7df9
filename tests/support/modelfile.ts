// An independent reader of what the Ollama bundle writes (src/export/ollama.ts), for the tests:
//   parseModelfile: Ollama's Modelfile grammar (docs/modelfile.md and its parser's rules): `# comment` lines; an
//     instruction (FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE; case-insensitive) then its argument
//     to the end of the line, or across lines while a "…" or """…""" is open; the argument is trimmed, then one pair
//     of quotes (""" or ") removed — no escapes; PARAMETER takes a name ([A-Za-z0-9_]) then the value the same way;
//     unprintable characters other than tab and newline are dropped; a file without FROM is refused.
//   goTemplate: the part of Go's text/template the bundle's TEMPLATE may use — text, {{ "literal" }}, .Field,
//     $.Field, $var, if / else if / else / end, range $i, $_ := …, $x := …, eq ne and or not len slice, ( … ),
//     {{- and -}} trimming — evaluated over Ollama's values (.System, .Messages with .Role/.Content).
// Written from those descriptions, not from our writer: it is the second opinion.

const COMMANDS = new Set(['from', 'parameter', 'template', 'system', 'adapter', 'license', 'message']);

export interface ParsedModelfile {
  from: string;
  template?: string;
  system?: string;
  parameters: [string, string][];
}

function unquote(raw: string, line: number): string {
  const s = raw.trim();
  if (s.startsWith('"""')) {
    if (s.length < 6 || !s.endsWith('"""')) throw new Error(`Modelfile line ${line}: unterminated """`);
    return s.slice(3, -3);
  }
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"')) throw new Error(`Modelfile line ${line}: unterminated "`);
    return s.slice(1, -1);
  }
  return s;
}

/** Whether `s` (an argument so far) is inside an open quote. */
function open(s: string): boolean {
  const t = s.trimStart();
  if (t.startsWith('"""')) return t.length < 6 || !t.trimEnd().endsWith('"""');
  if (t.startsWith('"')) return t.trimEnd().length < 2 || !t.trimEnd().endsWith('"');
  return false;
}

export function parseModelfile(text: string): ParsedModelfile {
  const out: ParsedModelfile = { from: '', parameters: [] };
  const clean = [...text].filter((ch) => ch === '\n' || ch === '\t' || ch === '\r' || !/[\p{Cc}\p{Cn}]/u.test(ch)).join('');
  const lines = clean.split(/\r?\n/);
  let from: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const m = /^\s*([A-Za-z]+)[ \t]+([\s\S]*)$/.exec(line);
    if (!m || !COMMANDS.has(m[1]!.toLowerCase())) throw new Error(`Modelfile line ${i + 1}: not an instruction: ${JSON.stringify(line)}`);
    const cmd = m[1]!.toLowerCase();
    let arg = m[2]!;
    let name: string | undefined;
    if (cmd === 'parameter') {
      const p = /^([A-Za-z0-9_]+)[ \t]+([\s\S]*)$/.exec(arg);
      if (!p) throw new Error(`Modelfile line ${i + 1}: PARAMETER needs a name and a value`);
      name = p[1]!;
      arg = p[2]!;
    }
    const start = i + 1;
    while (open(arg)) {
      if (++i >= lines.length) throw new Error(`Modelfile line ${start}: a quote is never closed`);
      arg += '\n' + lines[i]!;
    }
    const value = unquote(arg, start);
    if (cmd === 'from') from = value;
    else if (cmd === 'template') out.template = value;
    else if (cmd === 'system') out.system = value;
    else if (cmd === 'parameter') out.parameters.push([name!, value]);
  }
  if (!from) throw new Error('Modelfile: no FROM line');
  out.from = from;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Go text/template, the subset

type Node = { t: 'text'; s: string } | { t: 'out'; e: string } | { t: 'if'; arms: { cond: string | null; body: Node[] }[] }
  | { t: 'range'; vars: string[]; e: string; body: Node[] } | { t: 'set'; name: string; e: string };

function lex(src: string): ({ t: 'text'; s: string } | { t: 'act'; s: string })[] {
  const out: ({ t: 'text'; s: string } | { t: 'act'; s: string })[] = [];
  let at = 0;
  while (at < src.length) {
    const i = src.indexOf('{{', at);
    if (i < 0) { out.push({ t: 'text', s: src.slice(at) }); break; }
    let text = src.slice(at, i);
    let j = i + 2;
    let inStr = false;
    for (; j < src.length - 1; j++) {
      if (src[j] === '"' && src[j - 1] !== '\\') inStr = !inStr;
      if (!inStr && src[j] === '}' && src[j + 1] === '}') break;
    }
    if (j >= src.length - 1) throw new Error('template: unclosed action');
    let act = src.slice(i + 2, j);
    if (act.startsWith('- ')) { text = text.replace(/\s+$/, ''); act = act.slice(1); }
    let rtrim = false;
    if (act.endsWith(' -')) { rtrim = true; act = act.slice(0, -1); }
    out.push({ t: 'text', s: text }, { t: 'act', s: act.trim() });
    at = j + 2;
    if (rtrim) while (at < src.length && /\s/.test(src[at]!)) at++;
  }
  return out;
}

function parse(src: string): Node[] {
  const toks = lex(src);
  let k = 0;
  const block = (stop: RegExp): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (k < toks.length) {
      const tk = toks[k++]!;
      if (tk.t === 'text') { if (tk.s) nodes.push({ t: 'text', s: tk.s }); continue; }
      const a = tk.s;
      if (stop.test(a)) return { nodes, end: a };
      let m: RegExpExecArray | null;
      if ((m = /^if\s+(.+)$/.exec(a))) {
        const arms: { cond: string | null; body: Node[] }[] = [];
        let cond: string | null = m[1]!;
        for (;;) {
          const b = block(/^(else|end)\b/);
          arms.push({ cond, body: b.nodes });
          if (b.end === 'end') break;
          const e = /^else(?:\s+if\s+(.+))?$/.exec(b.end)!;
          cond = e[1] ?? null;
        }
        nodes.push({ t: 'if', arms });
      } else if ((m = /^range\s+(?:(\$\w*)\s*(?:,\s*(\$\w*))?\s*:=\s*)?(.+)$/.exec(a))) {
        const b = block(/^end$/);
        nodes.push({ t: 'range', vars: [m[1], m[2]].filter((v): v is string => v !== undefined), e: m[3]!, body: b.nodes });
      } else if ((m = /^(\$\w+)\s*:?=\s*(.+)$/.exec(a))) nodes.push({ t: 'set', name: m[1]!, e: m[2]! });
      else if (/^(end|else)\b/.test(a)) throw new Error(`template: unexpected {{ ${a} }}`);
      else nodes.push({ t: 'out', e: a });
    }
    if (stop.source !== '^$') throw new Error('template: missing {{ end }}');
    return { nodes, end: '' };
  };
  return block(/^$/).nodes;
}

type Val = unknown;
const truthy = (v: Val) => !(v === undefined || v === null || v === false || v === '' || v === 0 || (Array.isArray(v) && v.length === 0));

function evalExpr(src: string, dot: Val, root: Val, vars: Map<string, Val>): Val {
  const toks = src.match(/"(?:[^"\\]|\\.)*"|\(|\)|\$?[\w.$]+|\$/g) ?? [];
  let k = 0;
  const operand = (): Val => {
    const t = toks[k++];
    if (t === undefined) throw new Error(`template: missing operand in ${src}`);
    if (t === '(') { const v = call(); if (toks[k++] !== ')') throw new Error(`template: ) expected in ${src}`); return v; }
    if (t.startsWith('"')) return JSON.parse(t);
    if (/^\d+$/.test(t)) return Number(t);
    if (t.startsWith('$')) {
      const [v, ...path] = t.split('.');
      let x = v === '$' ? root : vars.get(v!);
      if (v !== '$' && !vars.has(v!)) throw new Error(`template: undefined variable ${v}`);
      for (const p of path) x = (x as Record<string, Val>)?.[p];
      return x;
    }
    if (t.startsWith('.')) return t === '.' ? dot : t.slice(1).split('.').reduce<Val>((x, p) => (x as Record<string, Val>)?.[p], dot);
    return { fn: t };
  };
  const FN: Record<string, (...a: Val[]) => Val> = {
    eq: (a, ...b) => b.some((x) => x === a), ne: (a, b) => a !== b, not: (a) => !truthy(a),
    and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1], or: (...a) => a.find(truthy) ?? a[a.length - 1],
    len: (a) => (a as unknown[] | string).length, slice: (a, i, j) => (a as unknown[]).slice(i as number, j as number | undefined),
  };
  const call = (): Val => {
    const head = operand();
    if (head && typeof head === 'object' && 'fn' in head) {
      const f = FN[(head as { fn: string }).fn];
      if (!f) throw new Error(`template: unknown function ${(head as { fn: string }).fn}`);
      const args: Val[] = [];
      while (k < toks.length && toks[k] !== ')') args.push(operand());
      return f(...args);
    }
    return head;
  };
  const v = call();
  if (k !== toks.length) throw new Error(`template: cannot read ${src}`);
  return v;
}

/** `template` executed over `data` (Go text/template semantics for the subset above). */
export function executeGoTemplate(template: string, data: Val): string {
  const run = (nodes: Node[], dot: Val, vars: Map<string, Val>): string => {
    let out = '';
    for (const n of nodes) {
      if (n.t === 'text') out += n.s;
      else if (n.t === 'out') out += String(evalExpr(n.e, dot, data, vars) ?? '');
      else if (n.t === 'set') vars.set(n.name, evalExpr(n.e, dot, data, vars));
      else if (n.t === 'if') {
        const arm = n.arms.find((a) => a.cond === null || truthy(evalExpr(a.cond, dot, data, vars)));
        if (arm) out += run(arm.body, dot, new Map(vars));
      } else {
        const list = evalExpr(n.e, dot, data, vars) as Val[];
        list.forEach((item, i) => {
          const inner = new Map(vars);
          if (n.vars.length === 1) inner.set(n.vars[0]!, item);
          if (n.vars.length === 2) { inner.set(n.vars[0]!, i); inner.set(n.vars[1]!, item); }
          out += run(n.body, item, inner);
        });
      }
    }
    return out;
  };
  return run(parse(template), data, new Map([['$', data]]));
}

/** Ollama's values for a chat: the system messages become .System, every message stays in .Messages. */
export function ollamaValues(messages: readonly { role: string; content: string }[]): { System: string; Messages: { Role: string; Content: string }[] } {
  return {
    System: messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n'),
    Messages: messages.map((m) => ({ Role: m.role, Content: m.content })),
  };
}
