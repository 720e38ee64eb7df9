// The Train stage (being built).
import { h } from '../dom.ts';

export function trainStage(): Node {
  return h('p', { class: 'muted' }, 'Not built yet.');
}
