// Tiny DOM helper. Text goes in through textContent only: model output and server errors are untrusted and are
// never parsed as HTML.
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on')) throw new Error(`h(): use addEventListener, not attribute ${k}`);
    el.setAttribute(k, v === true ? '' : v);
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/**
 * What a thrown value says to people: its message, without the class name ("Import refused: …", not "ImportError:
 * Import refused: …"; comlink keeps the message across workers), first letter capitalized; the class name only
 * when there is no message. Plain text.
 */
export function errorText(e: unknown): string {
  const err = e as { name?: unknown; message?: unknown } | null;
  const text = typeof err?.message === 'string' && err.message.trim() !== '' ? err.message
    : typeof err?.name === 'string' && err.name !== '' ? err.name : String(e);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Shows an error in a status element: `prefix` + errorText(e) as plain text, in the error style, with a Dismiss
 * button (an icon with a label for screen readers; not part of the element's text). The error stays until the user
 * dismisses it (then the element is emptied and `onDismiss` runs) or the caller shows something else there — a new
 * attempt or its success must replace it (setting textContent does).
 */
export function showError(el: HTMLElement, e: unknown, opts: { prefix?: string; onDismiss?: () => void } = {}): void {
  const dismiss = h('button', { type: 'button', class: 'dismiss', title: 'Dismiss', 'aria-label': 'Dismiss this message' });
  dismiss.addEventListener('click', () => {
    el.replaceChildren();
    el.classList.remove('error');
    opts.onDismiss?.();
  });
  el.classList.remove('muted', 'ok', 'bad');
  el.classList.add('error');
  el.replaceChildren(h('span', {}, `${opts.prefix ?? ''}${errorText(e)}`), dismiss);
}

/** A duration for people: "42 s", "3 min 5 s", "1 h 2 min"; '—' when unknown. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
