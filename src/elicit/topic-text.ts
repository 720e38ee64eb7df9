// The curation strategy's topic tree as text a person edits: one topic per line, subtopics indented under their
// parent (spaces; a tab counts as 4), optional list bullets ("-", "*", "•") ignored, blank lines ignored. Or the
// tree as JSON (curation's own TopicNode[] shape) when the text starts with '['. parseTopicText turns either into
// TopicNode[] or throws ElicitError naming the line and what is wrong; topicsToText writes a tree back as text.
// Pure functions, no I/O (the Data stage's editor and its unit test use them).
import type { TopicNode } from './curation.ts';
import { ElicitError } from './types.ts';

const BULLET = /^[-*•](?:\s+|$)/;

interface Line {
  no: number;
  indent: number;
  topic: string;
}

function indentOf(raw: string): number {
  let n = 0;
  for (const ch of raw) {
    if (ch === ' ') n += 1;
    else if (ch === '\t') n += 4;
    else break;
  }
  return n;
}

/** Builds the nodes at one indentation level from lines[i..]; returns them and where it stopped. */
function build(lines: Line[], i: number, level: number): { nodes: TopicNode[]; next: number } {
  const nodes: TopicNode[] = [];
  while (i < lines.length && lines[i]!.indent === level) {
    const line = lines[i]!;
    i++;
    if (i < lines.length && lines[i]!.indent > level) {
      const child = lines[i]!.indent;
      const sub = build(lines, i, child);
      nodes.push({ topic: line.topic, subtopics: sub.nodes });
      i = sub.next;
    } else {
      nodes.push(line.topic);
    }
    if (i < lines.length && lines[i]!.indent > level) {
      // Deeper than this level but not at the level of the subtopics just read: ambiguous nesting.
      const l = lines[i]!;
      throw new ElicitError(`topic tree, line ${l.no}: “${l.topic}” is indented ${l.indent} spaces, which matches no topic above it (indent it like its siblings)`);
    }
  }
  if (i < lines.length && lines[i]!.indent > level) {
    const l = lines[i]!;
    throw new ElicitError(`topic tree, line ${l.no}: “${l.topic}” is indented ${l.indent} spaces, which matches no topic above it (indent it like its siblings)`);
  }
  return { nodes, next: i };
}

/** Parses an indented topic list (or JSON TopicNode[]) into a topic tree; throws ElicitError naming the line. */
export function parseTopicText(text: string): TopicNode[] {
  const trimmed = text.trim();
  if (trimmed === '') throw new ElicitError('topic tree: write at least one topic (one per line; indent subtopics under their topic)');
  if (trimmed.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (e) {
      throw new ElicitError(`topic tree: the text starts with '[' but is not valid JSON (${(e as Error).message.slice(0, 120)})`);
    }
    if (!Array.isArray(v)) throw new ElicitError('topic tree: JSON must be an array of topics (strings or {"topic", "subtopics"})');
    return v as TopicNode[]; // checked in depth by curation's validate (errors name the path, e.g. topics[0].subtopics[1])
  }
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const indent = indentOf(raw);
    const topic = raw.trim().replace(BULLET, '').trim();
    if (topic === '') throw new ElicitError(`topic tree, line ${i + 1}: a bullet without a topic`);
    if (topic.length > 500) throw new ElicitError(`topic tree, line ${i + 1}: a topic of ${topic.length} characters (at most 500)`);
    lines.push({ no: i + 1, indent, topic });
  });
  const first = lines[0]!;
  const top = Math.min(...lines.map((l) => l.indent));
  if (first.indent !== top) {
    throw new ElicitError(`topic tree, line ${first.no}: the first topic is indented more than a later top-level topic (start the tree at the left margin)`);
  }
  const { nodes, next } = build(lines, 0, top);
  if (next < lines.length) {
    const l = lines[next]!;
    throw new ElicitError(`topic tree, line ${l.no}: “${l.topic}” is indented ${l.indent} spaces, which matches no topic above it`);
  }
  return nodes;
}

/** The tree as indented text (two spaces per level), which parseTopicText reads back to the same tree. */
export function topicsToText(nodes: readonly TopicNode[], depth = 0): string {
  const pad = '  '.repeat(depth);
  return nodes.map((n) => (typeof n === 'string' ? `${pad}${n}` : `${pad}${n.topic}\n${topicsToText(n.subtopics, depth + 1)}`)).join('\n');
}
