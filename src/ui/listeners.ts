// A set of listeners for one kind of event, for the page's own notifications (a teacher load's steps, a job run's):
// `on` adds a listener and returns its removal; `emit` calls each, in the order added — one that throws is logged
// and the others still run.
export interface Listeners<E> {
  on(fn: (e: E) => void): () => void;
  emit(e: E): void;
}

/** `label` names the event in the log line of a listener that threw. */
export function listeners<E>(label: string): Listeners<E> {
  const set = new Set<(e: E) => void>();
  return {
    on(fn) {
      set.add(fn);
      return () => set.delete(fn);
    },
    emit(e) {
      for (const fn of [...set]) {
        try {
          fn(e);
        } catch (err) {
          console.error(`a ${label} listener failed`, err);
        }
      }
    },
  };
}
