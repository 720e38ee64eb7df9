// "Distil the demo": the whole walk on what the app ships (being built).
import { h } from '../dom.ts';

export function demoCard(): Node {
  return h('div', { id: 'demo' });
}
