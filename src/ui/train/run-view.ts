// One run as it trains: status, progress with ETA and throughput, Pause/Resume/Delete, live charts of every loss
// term, grad norm, learning rate, tokens/s and held-out perplexity (redrawn from the run's stored log after a
// reload, then extended by live events), sample generations as plain text, and the run's configuration.
// Stable hooks: #run-view[data-run], #run-status[data-status][data-step][data-steps], #run-progress, #run-eta,
// #run-data (the data notes), #run-pause, #run-resume, #run-delete, #run-error, #run-samples li[data-step], #run-config,
// #chart-<id>[data-points].
import { methodOf } from '../../engine/runs/methods.ts';
import type { RunErrorCode, RunEvent, RunInfo, RunLog } from '../../protocol.ts';
import { duration, errorText, h } from '../dom.ts';
import { LiveChart } from './charts.ts';

/** What a run's charts are about: a language model's held-out figures, preference accuracy, or RL's reward. */
type RunKind = 'lm' | 'pairs' | 'rl';
const runKind = (spec: RunInfo['spec']): RunKind => (spec.method === 'rl' ? 'rl' : methodOf(spec).data === 'pairs' ? 'pairs' : 'lm');

/** The charts; `for`: the kinds of run that show one (absent: every run). */
const CHARTS: { id: string; title: string; series: { label: string; color: string }[]; log?: boolean; empty?: string; for?: RunKind[] }[] = [
  // RL's objective (advantage-weighted log-probabilities plus the KL term) can be negative and says little: its
  // charts are the reward, the KL and the length.
  { id: 'loss', title: 'Training loss', series: [{ label: 'objective', color: '#3b5bdb' }, { label: 'CE', color: '#2b8a3e' }, { label: 'KD', color: '#e8590c' }], log: true, for: ['lm', 'pairs'] },
  { id: 'reward', title: 'Reward', series: [{ label: 'mean (batch)', color: '#2b8a3e' }, { label: 'spread (std)', color: '#fab005' }, { label: 'held out', color: '#862e9c' }], for: ['rl'], empty: 'No RL step yet.' },
  { id: 'kl', title: 'KL to the reference (per token)', series: [{ label: 'batch', color: '#c92a2a' }, { label: 'held out', color: '#862e9c' }], for: ['rl'], empty: 'No RL step yet.' },
  { id: 'length', title: 'Answer length (tokens)', series: [{ label: 'mean', color: '#1098ad' }], for: ['rl'], empty: 'No RL step yet.' },
  { id: 'ppl', title: 'Held-out perplexity', series: [{ label: 'perplexity', color: '#862e9c' }], log: true, for: ['lm', 'rl'], empty: 'No held-out evaluation yet (it runs every “held-out eval every” steps and at the end).' },
  { id: 'teacher', title: 'Against the teacher (held out)', series: [{ label: 'KL', color: '#c92a2a' }, { label: 'top-1 agreement', color: '#1098ad' }], for: ['lm'], empty: 'Nothing to compare yet: needs a held-out evaluation and the teacher’s distributions (its model, or stored top-k).' },
  { id: 'pairs', title: 'Held-out preference accuracy', series: [{ label: 'accuracy', color: '#0b7285' }], for: ['pairs'], empty: 'No held-out evaluation yet.' },
  { id: 'gradnorm', title: 'Gradient norm', series: [{ label: '‖g‖', color: '#5c940d' }] },
  { id: 'lr', title: 'Learning rate', series: [{ label: 'lr', color: '#868e96' }] },
  { id: 'tps', title: 'Throughput (tokens/s)', series: [{ label: 'tokens/s', color: '#364fc7' }] },
];

/** What to do after a run stopped, by why it stopped. */
const NEXT: Record<RunErrorCode, string> = {
  'device-lost': 'reload the page, then Resume (it continues from the last checkpoint).',
  'out-of-memory': 'this GPU cannot hold the run: start a new run with a smaller batch, sequence length or model.',
  'data-changed': 'its data is gone: start a new run on the dataset as it is now.',
  failed: 'fix the cause, then Resume (it continues from the last checkpoint).',
};

export interface RunViewActions {
  resume(run: RunInfo): void;
  pause(run: RunInfo): void;
  remove(run: RunInfo): void;
}

export class RunView {
  readonly element: HTMLElement;
  private run: RunInfo | null = null;
  private readonly charts = new Map<string, LiveChart>();
  private readonly status = h('div', { id: 'run-status', class: 'muted' });
  private readonly progress = h('progress', { id: 'run-progress', max: '1', value: '0' });
  private readonly eta = h('div', { id: 'run-eta', class: 'muted small' });
  private readonly error = h('div', { id: 'run-error', class: 'error', hidden: true });
  private readonly samples = h('ul', { id: 'run-samples' });
  private readonly config = h('pre', { id: 'run-config', class: 'text small' });
  /** What the run's data came to when it was created (records left out, tokens paired across tokenizers, …). */
  private readonly dataNotes = h('p', { id: 'run-data', class: 'muted small' });
  private readonly title = h('h3', {});
  private readonly pauseBtn = h('button', { id: 'run-pause', class: 'secondary' }, 'Pause');
  private readonly resumeBtn = h('button', { id: 'run-resume' }, 'Resume');
  private readonly deleteBtn = h('button', { id: 'run-delete', class: 'danger' }, 'Delete run');
  private lastStep = 0;
  private stepTimes: number[] = [];

  constructor(actions: RunViewActions) {
    for (const c of CHARTS) this.charts.set(c.id, new LiveChart(c));
    this.pauseBtn.addEventListener('click', () => { if (this.run) { this.pauseBtn.disabled = true; actions.pause(this.run); } });
    this.resumeBtn.addEventListener('click', () => { if (this.run) { this.resumeBtn.disabled = true; actions.resume(this.run); } });
    this.deleteBtn.addEventListener('click', () => {
      if (!this.run) return;
      if (this.deleteBtn.dataset.confirm !== 'yes') {
        this.deleteBtn.dataset.confirm = 'yes';
        this.deleteBtn.textContent = 'Really delete? Click again';
        return;
      }
      actions.remove(this.run);
    });
    this.element = h('div', { id: 'run-view', class: 'subcard', hidden: true },
      this.title, this.status, this.dataNotes, this.progress, this.eta, this.error,
      h('div', { class: 'buttons' }, this.pauseBtn, this.resumeBtn, this.deleteBtn),
      h('div', { class: 'charts', id: 'run-charts' }, ...[...this.charts.values()].map((c) => c.element)),
      h('h3', {}, 'Samples from the student'), h('p', { class: 'muted small' }, 'What the student writes for the sample prompts as it trains (sampled at temperature 0.8; model output, shown as plain text).'), this.samples,
      h('details', {}, h('summary', { class: 'muted' }, 'Configuration'), this.config),
    );
  }

  get runId(): string | undefined {
    return this.run?.id;
  }

  /** Shows a run from its stored history (everything logged so far). */
  show(run: RunInfo, logs: RunLog[]): void {
    this.run = run;
    this.element.hidden = false;
    this.element.dataset.run = run.id;
    this.deleteBtn.dataset.confirm = '';
    this.deleteBtn.textContent = 'Delete run';
    // Charts of what this run's method measures: a language model's held-out figures, preference accuracy, or reward.
    const kind = runKind(run.spec);
    for (const spec of CHARTS) {
      const c = this.charts.get(spec.id)!;
      c.clear();
      c.element.hidden = !!spec.for && !spec.for.includes(kind);
    }
    this.samples.replaceChildren();
    this.stepTimes = [];
    this.lastStep = 0;
    for (const l of logs) this.addLog(l);
    const { teacher, pretrained, ...spec } = run.spec;
    this.config.textContent = JSON.stringify({ ...spec, teacher: teacher?.label, pretrained: pretrained?.label, model: run.model, train: run.train, data: run.data }, null, 2);
    this.dataNotes.textContent = run.data.notes.join(' · ');
    this.setStatus(run);
  }

  /** A live event of the shown run. */
  onEvent(e: RunEvent): void {
    if (e.kind === 'status') this.setStatus(e.run);
    else if (e.kind === 'progress') {
      this.eta.textContent = e.message;
    } else this.addLog(e);
  }

  private addLog(l: RunLog): void {
    const c = (id: string) => this.charts.get(id)!;
    if (l.kind === 'step') {
      // A resumed run logs the steps after its checkpoint again: drop what lies beyond from the charts.
      if (l.step <= this.lastStep) this.truncate(l.step - 1);
      this.lastStep = l.step;
      const pairs = this.run ? runKind(this.run.spec) !== 'lm' : false;
      c('loss').push(l.step, [l.loss, pairs ? null : l.ce, l.kd || null]);
      c('gradnorm').push(l.step, [l.gradNorm]);
      c('lr').push(l.step, [l.lr]);
      c('tps').push(l.step, [l.tokensPerSec]);
      if (l.reward !== undefined) {
        c('reward').push(l.step, [l.reward, l.rewardStd ?? null, null]);
        c('kl').push(l.step, [l.kl ?? null, null]);
        c('length').push(l.step, [l.length ?? null]);
      }
      this.stepTimes.push(l.ms);
      const steps = this.run?.train.steps ?? 0;
      this.progress.max = Math.max(1, steps);
      this.progress.value = l.step;
      this.status.dataset.step = String(l.step);
      const tps = Math.round(l.tokensPerSec).toLocaleString('en');
      this.eta.textContent = `step ${l.step} of ${steps} · ${tps} tokens/s · ${(l.ms / 1000).toFixed(2)} s a step${l.etaMs !== undefined && l.step < steps ? ` · about ${duration(l.etaMs)} left` : ''}${l.skipped ? ' · this step was skipped (non-finite gradient)' : ''}${l.pairAccuracy !== undefined ? ` · pair accuracy ${(l.pairAccuracy * 100).toFixed(0)}%` : ''}${l.reward !== undefined ? ` · mean reward ${l.reward.toFixed(3)}` : ''}${l.onPolicy ? ' · on-policy step' : ''}${l.uld !== undefined ? ` · ULD ${l.uld.toFixed(3)}` : ''}`;
    } else if (l.kind === 'eval') {
      // A pair method's held-out loss is the pair loss, not a language model's: its chart is preference accuracy.
      if (l.pairAccuracy !== undefined) c('pairs').push(l.step, [l.pairAccuracy]);
      else if (Number.isFinite(l.ppl)) c('ppl').push(l.step, [l.ppl]);
      if (l.reward !== undefined) {
        c('reward').push(l.step, [null, null, l.reward]);
        c('kl').push(l.step, [null, l.kl ?? null]);
      }
      c('teacher').push(l.step, [l.klToTeacher ?? null, l.top1Agreement ?? null]);
    } else if (l.kind === 'sample') {
      this.samples.prepend(h('li', { 'data-step': String(l.step) }, h('span', { class: 'muted small' }, `step ${l.step}`),
        ...l.samples.map((s) => h('div', {}, h('span', { class: 'muted' }, s.prompt), ' → ', h('span', { class: 'text' }, s.text)))));
      while (this.samples.children.length > 12) this.samples.lastElementChild!.remove();
    } else if (l.kind === 'event' && l.level === 'warn') {
      this.error.hidden = false;
      this.error.className = 'warn';
      this.error.textContent = l.message;
    }
  }

  private truncate(step: number): void {
    for (const chart of this.charts.values()) {
      const { x, y } = chart.points();
      chart.clear();
      x.forEach((xi, i) => { if (xi <= step) chart.push(xi, y.map((s) => s[i])); });
    }
  }

  setStatus(run: RunInfo): void {
    if (this.run && run.id !== this.run.id) return;
    this.run = run;
    const s = run.status;
    this.status.dataset.status = s;
    this.status.dataset.steps = String(run.train.steps);
    this.title.textContent = `Run “${run.name}”`;
    const e = run.lastEval;
    const pct = !e ? '' : e.pairAccuracy !== undefined ? ` · held-out preference accuracy ${(e.pairAccuracy * 100).toFixed(0)}% at step ${e.step}`
      : `${e.reward !== undefined ? ` · held-out mean reward ${e.reward.toFixed(3)}, KL ${e.kl!.toFixed(3)}` : ''}${Number.isFinite(e.ppl) ? ` · held-out perplexity ${e.ppl.toFixed(1)}` : ''} at step ${e.step}`;
    const words: Record<string, string> = {
      created: 'Ready to train.', running: 'Training on this GPU…', paused: `Paused at step ${run.checkpointStep}: Resume continues from there.`,
      done: `Done: ${run.train.steps} steps.`, failed: 'Stopped by an error.',
    };
    this.status.className = s === 'failed' ? 'bad' : s === 'done' ? 'ok' : 'muted';
    this.status.textContent = `${words[s]}${pct}`;
    this.error.hidden = !run.error;
    this.error.className = 'error';
    this.error.textContent = run.error ? `${run.error}${s === 'failed' ? ` — ${NEXT[run.errorCode ?? 'failed']}` : ''}` : '';
    this.pauseBtn.disabled = s !== 'running';
    this.resumeBtn.disabled = s === 'running' || s === 'done';
    this.resumeBtn.textContent = s === 'created' ? 'Start' : 'Resume';
    this.deleteBtn.disabled = s === 'running';
    if (s !== 'running') this.progress.value = Math.min(Number(this.progress.value), run.step);
  }

  showError(e: unknown): void {
    this.error.hidden = false;
    this.error.className = 'error';
    this.error.textContent = errorText(e);
  }

  hide(): void {
    this.run = null;
    this.element.hidden = true;
  }
}
