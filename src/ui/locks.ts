// Web Locks for long work that must run in one tab at a time (an elicitation job, a training run): the lock is
// held while `fn` runs and released when it settles, or when the tab closes or reloads. While another tab holds
// it, `onWait` is called and this waits. Without navigator.locks, `fn` just runs.
type LockManagerLike = {
  request<T>(name: string, opts: { ifAvailable?: boolean }, fn: (lock: unknown) => Promise<T>): Promise<T>;
};

export async function withLock<T>(name: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const locks = (navigator as { locks?: LockManagerLike }).locks;
  if (!locks) return fn();
  const NOT_AVAILABLE = Symbol('not available');
  const first = await locks.request<T | typeof NOT_AVAILABLE>(name, { ifAvailable: true }, async (lock) => (lock === null ? NOT_AVAILABLE : fn()));
  if (first !== NOT_AVAILABLE) return first;
  onWait?.();
  return locks.request<T>(name, {}, () => fn());
}
