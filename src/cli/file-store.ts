// Checkpoints as files in a folder (Node only: the CLI). Writes go to a temporary file renamed into place, so a
// crash never leaves a half-written checkpoint under the real name.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointStore } from '../train/checkpoint.ts';

export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly dir: string) {}
  private path(name: string) {
    if (!/^[\w.-]+$/.test(name)) throw new Error(`checkpoint name '${name}': use letters, digits, '.', '_' and '-' only`);
    return join(this.dir, `${name}.ckpt`);
  }
  async put(name: string, bytes: Uint8Array) {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path(name)}.tmp-${process.pid}`;
    await writeFile(tmp, bytes);
    await rename(tmp, this.path(name));
  }
  async get(name: string) {
    try {
      return new Uint8Array(await readFile(this.path(name)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
  async list() {
    try {
      return (await readdir(this.dir)).filter((f) => f.endsWith('.ckpt')).map((f) => f.slice(0, -5)).sort();
    } catch {
      return [];
    }
  }
}
