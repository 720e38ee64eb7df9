// Checkpoints in IndexedDB (the app's CheckpointStore): one object store of name → bytes in its own database,
// written in one 'strict' transaction each, so a closed tab leaves either the old or the new checkpoint, never a
// mix. A full disk surfaces as a clear error and leaves the previous checkpoint in place.
import { openDB, type IDBPDatabase } from 'idb';
import type { CheckpointStore } from './checkpoint.ts';

const STORE = 'checkpoints';

export class IdbCheckpointStore implements CheckpointStore {
  private constructor(private readonly db: IDBPDatabase) {}

  /** Opens (creating on first use) the database `name` in this context's IndexedDB. */
  static async open(name = 'webgpu-distill-checkpoints'): Promise<IdbCheckpointStore> {
    const db = await openDB(name, 1, {
      upgrade(d) {
        d.createObjectStore(STORE);
      },
    });
    return new IdbCheckpointStore(db);
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    const tx = this.db.transaction(STORE, 'readwrite', { durability: 'strict' });
    try {
      await tx.store.put(bytes.slice().buffer, name);
      await tx.done;
    } catch (e) {
      const err = e as DOMException;
      if (err?.name === 'QuotaExceededError') {
        throw new Error(`checkpoint '${name}' (${(bytes.length / 1048576).toFixed(1)} MiB) does not fit in this browser's storage quota; the previous checkpoint is kept. Free space (delete old runs/datasets) or allow persistent storage.`);
      }
      throw e;
    }
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const v = (await this.db.get(STORE, name)) as ArrayBuffer | undefined;
    return v ? new Uint8Array(v) : undefined;
  }

  async list(): Promise<string[]> {
    return ((await this.db.getAllKeys(STORE)) as string[]).sort();
  }

  close(): void {
    this.db.close();
  }
}
