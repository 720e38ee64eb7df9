// Model folders the user picked, held in the engine's memory (the worker's, where the page transferred them once)
// under a key that specs refer to ({ held: key }): a form that re-plans on every change then sends a few bytes, not
// hundreds of MB of weights each time. A run made from one stores the files with itself (a reload empties this).
const held = new Map<string, Record<string, Uint8Array>>();
let next = 0;

/** Keeps `files` and returns the key a ModelFolderSource { held } names them by. */
export function holdFolder(files: Record<string, Uint8Array>): string {
  if (Object.keys(files).length === 0) throw new Error('the picked folder has no files');
  const key = `picked-${++next}`;
  held.set(key, files);
  return key;
}

/** The files held under `key`; throws what to do when the tab no longer has them. */
export function heldFolder(key: string): Record<string, Uint8Array> {
  const files = held.get(key);
  if (!files) throw new Error(`the picked model folder (${key}) is no longer in this tab's memory (the page was reloaded): pick the folder again`);
  return files;
}

/** Drops a held folder (the form picked another). */
export function releaseFolder(key: string): void {
  held.delete(key);
}
