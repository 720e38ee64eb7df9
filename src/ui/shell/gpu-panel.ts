// The "GPU" disclosure: which adapter the engine worker got (or why there is none and what to do), its optional
// features and limits, and the kernel self-test (every kernel against its CPU reference) with progress. Closed by
// default: this is diagnostics, not the workflow. Stable hooks: #gpu-status, #gpu-adapter, #gpu-summary,
// #selftest-quick, #selftest-run, #selftest-progress, #selftest-status[data-done=pass|fail|error], #selftest-results.
import type { AdapterReport, SelftestProgress, SelftestReport } from '../../protocol.ts';
import type { SelftestScope } from '../../engine/checks.ts';
import { OPTIONAL_FEATURES, REQUESTED_LIMITS } from '../../platform/gpu.ts';
import { errorText, formatBytes, h, showError } from '../dom.ts';
import { engine, onEngineError, proxy } from '../engine-client.ts';
import { startGpu } from '../services.ts';

export function gpuPanel(): HTMLElement {
  const summary = h('summary', { id: 'gpu-summary' }, 'GPU: starting the engine…');
  const body = h('div', { id: 'gpu-status', class: 'muted' }, 'Starting the engine worker…');
  const selftestButton = h('button', { id: 'selftest-run', class: 'secondary', disabled: true }, 'Full self-test (every shape)');
  const quickButton = h('button', { id: 'selftest-quick', class: 'secondary', disabled: true }, 'Quick self-test (one shape per kernel)');
  const selftestProgress = h('progress', { id: 'selftest-progress', max: '1', value: '0' });
  const selftestStatus = h('div', { id: 'selftest-status', class: 'muted' }, 'Checks the GPU kernels against their CPU references: quick (seconds) or every shape (minutes on a software adapter).');
  const selftestTable = h('table', { id: 'selftest-results' });
  const details = h('details', { id: 'gpu', class: 'gpu' }, summary, body,
    h('h3', {}, 'Kernel self-test'), selftestStatus, selftestProgress, h('div', { class: 'row' }, quickButton, selftestButton), h('div', { class: 'scroll' }, selftestTable));

  const showUnavailable = (e: unknown) => {
    body.className = 'error';
    body.textContent = errorText(e);
    summary.textContent = 'GPU: not available — open for details';
    summary.className = 'bad';
    details.open = true;
  };
  onEngineError(showUnavailable);

  const render = (r: AdapterReport) => {
    const name = [r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' · ') || 'unknown adapter';
    summary.textContent = `GPU: ${name}${r.isFallbackAdapter ? ' (software: correct but slow)' : ''}`;
    const limits = h('table', { id: 'gpu-limits' },
      ...REQUESTED_LIMITS.map((k) => {
        const v = r.limits[k];
        return h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, /Size$/.test(k) ? `${formatBytes(v)} (${v})` : String(v)));
      }));
    const features = h('div', { class: 'chips', id: 'gpu-features' },
      ...OPTIONAL_FEATURES.map((f) => h('span', { class: r.features.includes(f) ? 'chip on' : 'chip' }, `${r.features.includes(f) ? '✓' : '✗'} ${f}`)));
    body.className = '';
    body.replaceChildren(
      h('p', {}, h('strong', { id: 'gpu-adapter' }, name), r.isFallbackAdapter ? h('span', { class: 'muted' }, ' — software adapter: correct but slow') : null),
      h('p', { class: 'muted' }, `Acquired in the engine worker via ${r.source}.`),
      h('h3', {}, 'Optional features'), features,
      h('h3', {}, 'Limits (requested at the adapter’s maximum)'), h('div', { class: 'scroll' }, limits),
    );
  };

  startGpu().then((r) => { render(r); selftestButton.disabled = false; quickButton.disabled = false; }, showUnavailable);

  const renderSelftest = (rep: SelftestReport) => {
    selftestTable.replaceChildren(
      h('tr', {}, ...['kernel', 'shape M×N×K', 'result', 'max |err|', 'err / bound', 'ms', 'detail'].map((t) => h('th', {}, t))),
      ...rep.cases.map((c) =>
        h('tr', { 'data-ok': String(c.ok) },
          h('td', {}, `${c.kernel}_${c.variant}`), h('td', {}, c.shape),
          h('td', { class: c.ok ? 'ok' : 'bad' }, c.ok ? 'pass' : 'FAIL'),
          h('td', { class: 'num' }, c.maxAbsErr.toExponential(2)), h('td', { class: 'num' }, c.worstRatio.toFixed(3)),
          h('td', { class: 'num' }, c.ms.toFixed(1)), h('td', { class: 'muted' }, c.detail))),
    );
  };

  const runSelftest = async (scope: SelftestScope) => {
    selftestButton.disabled = true;
    quickButton.disabled = true;
    selftestStatus.className = 'muted';
    selftestStatus.textContent = 'Running…';
    delete selftestStatus.dataset.done;
    try {
      const rep = await engine().selftest(proxy((p: SelftestProgress) => {
        selftestProgress.max = p.total;
        selftestProgress.value = p.done;
        selftestStatus.textContent = `${p.done}/${p.total} ${p.message}`;
      }), scope);
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
      quickButton.disabled = false;
    }
  };
  selftestButton.addEventListener('click', () => void runSelftest('full'));
  quickButton.addEventListener('click', () => void runSelftest('quick'));
  return details;
}
