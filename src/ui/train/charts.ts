// Live training charts (uPlot, the library made for this): one small chart per quantity, x = step. Points are
// appended as the run logs them and redrawn at most once per animation frame; charts follow their container's
// width. Series names are plain text. uPlot and its stylesheet load with the first chart that has a point to draw,
// not with the page.
import type uPlot from 'uplot';
import { h } from '../dom.ts';

let uplotModule: Promise<typeof uPlot> | null = null;
function loadUPlot(): Promise<typeof uPlot> {
  if (!uplotModule) {
    uplotModule = Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(([m]) => m.default);
    uplotModule.catch(() => { uplotModule = null; }); // tried again with the next point
  }
  return uplotModule;
}

export interface ChartSpec {
  id: string;
  title: string;
  series: { label: string; color: string }[];
  /** Log scale on y (losses, perplexity). */
  log?: boolean;
}

export class LiveChart {
  readonly element: HTMLElement;
  private readonly xs: number[] = [];
  private readonly ys: (number | null)[][];
  private plot: uPlot | null = null;
  private creating = false;
  private pending = false;
  private readonly body: HTMLElement;

  constructor(readonly spec: ChartSpec) {
    this.ys = spec.series.map(() => []);
    this.body = h('div', { class: 'chart-body' });
    this.element = h('div', { class: 'chart', id: `chart-${spec.id}`, 'data-points': '0' }, h('h4', {}, spec.title), this.body);
    new ResizeObserver(() => this.resize()).observe(this.body);
  }

  private width(): number {
    return Math.max(200, Math.floor(this.body.clientWidth || 320));
  }

  private async create(): Promise<void> {
    this.creating = true;
    let UPlot: typeof uPlot;
    try {
      UPlot = await loadUPlot();
    } finally {
      this.creating = false;
    }
    const opts: uPlot.Options = {
      width: this.width(), height: 160,
      legend: { show: this.spec.series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: this.spec.log ? { distr: 3 } : {} },
      axes: [{ stroke: '#888', grid: { stroke: 'rgba(128,128,128,0.15)' } }, { stroke: '#888', grid: { stroke: 'rgba(128,128,128,0.15)' }, size: 52 }],
      series: [{ label: 'step' }, ...this.spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true, points: { show: false } }))],
    };
    this.plot = new UPlot(opts, [this.xs, ...this.ys] as uPlot.AlignedData, this.body); // with the points pushed meanwhile
  }

  private resize(): void {
    if (this.plot && this.body.clientWidth > 0) this.plot.setSize({ width: this.width(), height: 160 });
  }

  /** Appends one x with a value per series (null = this series has no point at x). */
  push(x: number, values: (number | null | undefined)[]): void {
    const i = this.xs.length;
    if (i > 0 && x === this.xs[i - 1]) {
      values.forEach((v, s) => { if (v !== undefined && v !== null && Number.isFinite(v)) this.ys[s]![i - 1] = v; });
    } else {
      this.xs.push(x);
      values.forEach((v, s) => this.ys[s]!.push(v !== undefined && v !== null && Number.isFinite(v) ? v : null));
    }
    this.element.dataset.points = String(this.xs.length);
    this.schedule();
  }

  clear(): void {
    this.xs.length = 0;
    for (const y of this.ys) y.length = 0;
    this.element.dataset.points = '0';
    this.schedule();
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (this.xs.length === 0) return;
      if (!this.plot) {
        if (!this.creating) this.create().catch((e: unknown) => console.error('charts: uPlot did not load', e));
      } else this.plot.setData([this.xs, ...this.ys] as uPlot.AlignedData);
    });
  }

  /** The points (for tests and for reading off values). */
  points(): { x: number[]; y: (number | null)[][] } {
    return { x: [...this.xs], y: this.ys.map((s) => [...s]) };
  }
}
