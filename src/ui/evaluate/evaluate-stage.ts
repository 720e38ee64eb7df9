// The Evaluate stage (being built).
import { h } from '../dom.ts';

export function evaluateStage(): Node {
  return h('p', { class: 'muted' }, 'Not built yet.');
}
