// Live training charts (uPlot, the library made for this, loaded with the first chart that has a point): one small
// chart per quantity, x = step. Points are appended as the run logs them and redrawn at most once per animation
// frame; charts follow their container's width; the y axis is as wide as its longest tick label. A chart without
// points says so in words instead of drawing empty axes (or the previous run's lines). Series names are plain text.
import type uPlot from 'uplot';
import { h } from '../dom.ts';

export interface ChartSpec {
  id: string;
  title: string;
  series: { label: string; color: string }[];
  /** Log scale on y (losses, perplexity). */
  log?: boolean;
  /** Shown while the chart has no point. */
  empty?: string;
}

let uplotModule: Promise<typeof uPlot> | undefined;
/** uPlot and its stylesheet, fetched once, when the first chart draws. */
function loadUplot(): Promise<typeof uPlot> {
  uplotModule ??= Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(([m]) => m.default);
  return uplotModule;
}

const AXIS_FONT_PX = 7; // width of a tick label character at uPlot's default 12px axis font, rounded up
/** The y axis's width: its longest tick label plus the tick and gap. */
const axisSize = (_: uPlot, values: string[] | null): number => Math.max(40, 18 + AXIS_FONT_PX * Math.max(0, ...(values ?? []).map((v) => String(v).length)));

export class LiveChart {
  readonly element: HTMLElement;
  private readonly xs: number[] = [];
  private readonly ys: (number | null)[][];
  private plot: uPlot | null = null;
  private pending = false;
  private readonly body: HTMLElement;
  private readonly note: HTMLElement;

  constructor(readonly spec: ChartSpec) {
    this.ys = spec.series.map(() => []);
    this.body = h('div', { class: 'chart-body' });
    this.note = h('p', { class: 'muted small chart-empty' }, spec.empty ?? 'No points yet.');
    this.body.hidden = true;
    this.element = h('div', { class: 'chart', id: `chart-${spec.id}`, 'data-points': '0' }, h('h4', {}, spec.title), this.note, this.body);
    new ResizeObserver(() => this.resize()).observe(this.body);
  }

  private width(): number {
    return Math.max(200, Math.floor(this.body.clientWidth || 320));
  }

  private async create(): Promise<void> {
    const UPlot = await loadUplot();
    if (this.plot || this.xs.length === 0) return;
    const grid = { stroke: 'rgba(128,128,128,0.15)' };
    const opts: uPlot.Options = {
      width: this.width(), height: 160,
      legend: { show: this.spec.series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: this.spec.log ? { distr: 3 } : {} },
      axes: [{ stroke: '#888', grid }, { stroke: '#888', grid, size: axisSize }],
      // uPlot's own rule for points: drawn while they are sparse (a held-out series of one or two evaluations is
      // visible), hidden on dense curves.
      series: [{ label: 'step' }, ...this.spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true, points: { size: 6 } }))],
    };
    this.plot = new UPlot(opts, [this.xs, ...this.ys] as uPlot.AlignedData, this.body);
  }

  private resize(): void {
    if (this.plot && this.body.clientWidth > 0) this.plot.setSize({ width: this.width(), height: 160 });
  }

  /** Appends one x with a value per series (null = this series has no point at x). */
  push(x: number, values: (number | null | undefined)[]): void {
    const i = this.xs.length;
    const ok = (v: number | null | undefined): v is number => v !== undefined && v !== null && Number.isFinite(v);
    if (i > 0 && x === this.xs[i - 1]) {
      values.forEach((v, s) => { if (ok(v)) this.ys[s]![i - 1] = v; });
    } else {
      if (!values.some(ok)) return; // nothing to draw at x (e.g. a metric this run does not have)
      this.xs.push(x);
      values.forEach((v, s) => this.ys[s]!.push(ok(v) ? v : null));
    }
    this.element.dataset.points = String(this.xs.length);
    this.schedule();
  }

  /** Empties the chart: its lines are gone at once, and it says it has no points. */
  clear(): void {
    this.xs.length = 0;
    for (const y of this.ys) y.length = 0;
    this.element.dataset.points = '0';
    this.plot?.destroy();
    this.plot = null;
    this.body.replaceChildren();
    this.body.hidden = true;
    this.note.hidden = false;
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.note.hidden = this.xs.length > 0;
      this.body.hidden = this.xs.length === 0;
      if (this.xs.length === 0) return;
      if (!this.plot) this.create().catch((e: unknown) => console.error('charts: uPlot did not load', e));
      else this.plot.setData([this.xs, ...this.ys] as uPlot.AlignedData);
    });
  }

  /** The points (for tests and for reading off values). */
  points(): { x: number[]; y: (number | null)[][] } {
    return { x: [...this.xs], y: this.ys.map((s) => [...s]) };
  }
}
