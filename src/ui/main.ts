// The app shell: the engine runs in a worker (comlink); this page shows the GPU it got, the places where the
// distillation workflow will live, and the kernel self-test with progress.
import * as Comlink from 'comlink';
import type { AdapterReport, EngineApi, SelftestProgress, SelftestReport } from '../protocol.ts';
import { OPTIONAL_FEATURES, REQUESTED_LIMITS } from '../platform/gpu.ts';
import { formatBytes, h } from './dom.ts';
import { dataPanel } from './data-panel.ts';
import { exportPanel } from './export-panel.ts';
import { teacherPanel } from './teacher-panel.ts';
import './style.css';

const STAGES: [id: string, title: string, what: string][] = [
  ['teacher', 'Teacher', 'An OpenAI-compatible API (OpenAI, vLLM, llama.cpp, Ollama, …) or a local model on WebGPU through transformers.js.'],
  ['data', 'Data', 'Elicit distillation data into IndexedDB: labeling, Self-Instruct, topic-guided curation, Evol-Instruct, top-k distributions, feedback, self-knowledge.'],
  ['train', 'Train', 'A small Llama-style student on this GPU with hand-written WGSL kernels: SFT, forward/reverse KL, JSD(β), TVD, skew KL, DPO, on-policy.'],
  ['evaluate', 'Evaluate', 'Held-out loss and perplexity, KL to the teacher, top-1 agreement, side-by-side generations.'],
  ['export', 'Export', 'safetensors + HF config, ONNX for transformers.js, GGUF for llama.cpp/Ollama; datasets for TRL and DistillKit.'],
];

/** The stages that have a working panel (the others show a placeholder). `engine` is created below. */
const PANELS: Record<string, () => Node> = {
  teacher: () => teacherPanel(),
  data: () => dataPanel(),
  export: () => exportPanel({ exportModel: (req, onProgress) => engine.exportModel(req, onProgress ? Comlink.proxy(onProgress) : undefined) }),
};

const root = document.getElementById('app')!;
root.replaceChildren();

const gpuBody = h('div', { id: 'gpu-status', class: 'muted' }, 'Starting the engine worker…');
const selftestButton = h('button', { id: 'selftest-run', disabled: true }, 'Run kernel self-test');
const selftestProgress = h('progress', { id: 'selftest-progress', max: '1', value: '0' });
const selftestStatus = h('div', { id: 'selftest-status', class: 'muted' }, 'Checks every GPU kernel against its CPU reference.');
const selftestTable = h('table', { id: 'selftest-results' });

root.append(
  h('header', {}, h('h1', {}, 'Distill'), h('p', {}, 'Distil a small, private, task-specific model from a large one — in this tab, on your GPU.')),
  h('main', {},
    h('section', { class: 'wide', id: 'gpu' }, h('h2', {}, 'GPU'), gpuBody),
    ...STAGES.map(([id, title, what]) =>
      h('section', { id: `stage-${id}` }, h('h2', {}, title), h('p', { class: 'muted' }, what), PANELS[id]?.() ?? h('p', { class: 'muted' }, 'Not built yet.'))),
    h('section', { class: 'wide', id: 'selftest' }, h('h2', {}, 'Kernel self-test'), selftestStatus, selftestProgress, selftestButton, selftestTable),
  ),
);

function renderGpu(r: AdapterReport): void {
  const name = [r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' · ') || 'unknown adapter';
  const limits = h('table', { id: 'gpu-limits' },
    ...REQUESTED_LIMITS.map((k) => {
      const v = r.limits[k];
      return h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, /Size$/.test(k) ? `${formatBytes(v)} (${v})` : String(v)));
    }));
  const features = h('div', { class: 'chips', id: 'gpu-features' },
    ...OPTIONAL_FEATURES.map((f) => h('span', { class: r.features.includes(f) ? 'chip on' : 'chip' }, `${r.features.includes(f) ? '✓' : '✗'} ${f}`)));
  gpuBody.className = '';
  gpuBody.replaceChildren(
    h('p', {}, h('strong', { id: 'gpu-adapter' }, name), r.isFallbackAdapter ? h('span', { class: 'muted' }, ' — software adapter: correct but slow') : null),
    h('p', { class: 'muted' }, `Acquired in the engine worker via ${r.source}.`),
    h('h3', {}, 'Optional features'), features,
    h('h3', {}, 'Limits (requested at the adapter’s maximum)'), limits,
  );
}

function renderSelftest(rep: SelftestReport): void {
  selftestTable.replaceChildren(
    h('tr', {}, ...['kernel', 'shape M×N×K', 'result', 'max |err|', 'err / bound', 'ms', 'detail'].map((t) => h('th', {}, t))),
    ...rep.cases.map((c) =>
      h('tr', { 'data-ok': String(c.ok) },
        h('td', {}, `${c.kernel}_${c.variant}`), h('td', {}, c.shape),
        h('td', { class: c.ok ? 'ok' : 'bad' }, c.ok ? 'pass' : 'FAIL'),
        h('td', { class: 'num' }, c.maxAbsErr.toExponential(2)), h('td', { class: 'num' }, c.worstRatio.toFixed(3)),
        h('td', { class: 'num' }, c.ms.toFixed(1)), h('td', { class: 'muted' }, c.detail))),
  );
}

function showError(where: HTMLElement, e: unknown): void {
  const err = e as Error;
  where.className = 'error';
  where.textContent = `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
}

const worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
worker.addEventListener('error', (e) => showError(gpuBody, new Error(`engine worker failed to start: ${e.message}`)));
const engine = Comlink.wrap<EngineApi>(worker);

engine.gpuInfo().then(
  (r) => {
    renderGpu(r);
    selftestButton.disabled = false;
  },
  (e) => showError(gpuBody, e),
);

selftestButton.addEventListener('click', async () => {
  selftestButton.disabled = true;
  selftestStatus.className = 'muted';
  selftestStatus.textContent = 'Running…';
  try {
    const rep = await engine.selftest(Comlink.proxy((p: SelftestProgress) => {
      selftestProgress.max = p.total;
      selftestProgress.value = p.done;
      selftestStatus.textContent = `${p.done}/${p.total} ${p.message}`;
    }));
    renderSelftest(rep);
    selftestStatus.className = rep.ok ? 'ok' : 'bad';
    selftestStatus.textContent = rep.ok
      ? `All ${rep.cases.length} kernel checks passed (${(rep.ms / 1000).toFixed(1)} s).`
      : `${rep.cases.filter((c) => !c.ok).length} of ${rep.cases.length} kernel checks FAILED.`;
    selftestStatus.dataset.done = rep.ok ? 'pass' : 'fail';
  } catch (e) {
    showError(selftestStatus, e);
    selftestStatus.dataset.done = 'error';
  } finally {
    selftestButton.disabled = false;
  }
});
