// The Export stage: pick a model (a trained run's latest checkpoint, the embedded default teacher, or an HF Llama
// folder from disk) and a format; the engine worker builds the files (a run's with training.json: configs, data and
// the held-out evaluation of exactly those weights); the page saves them as one .zip download, or into a folder the
// user picks (File System Access API, where the browser has it). A failed folder write removes what it wrote: no
// half-written export is left behind. Stable hooks: #export-source (option values: run:<id>, brown-teacher,
// picked), #export-files, #export-format, #export-zip, #export-folder, #export-status[data-done], #export-list.
import type { ExportFileData, ExportRequestData, ExportResultData } from '../../protocol.ts';
import { ADAPTER_FORMATS, ADAPTER_LABELS, EXPORT_FORMATS, FORMAT_LABELS } from '../../export/formats.ts';
import { zipFiles } from '../../export/zip.ts';
import { loadPref, savePref } from '../app-state.ts';
import { formatBytes, h, showError } from '../dom.ts';
import { pickedModelFiles } from '../services.ts';
import { comparePanel, type CompareBackend } from './compare-panel.ts';

export interface ExportBackend extends CompareBackend {
  exportModel(req: ExportRequestData, onProgress?: (message: string) => void): Promise<ExportResultData>;
  /** Trained runs that have a checkpoint (listed first); `onChange` is called when they change. */
  runs(): Promise<{ id: string; name: string; step: number; /** trained LoRA adapters (adapter formats apply) */ lora?: boolean }[]>;
  onRunsChange(fn: () => void): void;
}

const FORMATS = EXPORT_FORMATS.map((f) => [f, FORMAT_LABELS[f]] as const);

/** The embedded default teacher; HF Llama folders picked from disk re-export in another format. */
export const DEFAULT_TEACHER = { id: 'brown-teacher', label: 'Default teacher (Brown corpus, embedded)', path: 'models/brown-teacher/' };

type DirHandle = {
  getDirectoryHandle(name: string, o?: { create?: boolean }): Promise<DirHandle>;
  getFileHandle(name: string, o?: { create?: boolean }): Promise<{ createWritable(): Promise<{ write(d: BufferSource): Promise<void>; close(): Promise<void> }> }>;
  removeEntry(name: string, o?: { recursive?: boolean }): Promise<void>;
};
type PickerWindow = Window & { showDirectoryPicker?: (o?: { mode?: 'readwrite' }) => Promise<DirHandle> };

async function writeFolder(root: DirHandle, name: string, files: ExportFileData[]): Promise<void> {
  const top = await root.getDirectoryHandle(name, { create: true });
  try {
    for (const f of files) {
      const parts = f.path.split('/');
      let dir = top;
      for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p, { create: true });
      const w = await (await dir.getFileHandle(parts.at(-1)!, { create: true })).createWritable();
      await w.write(f.bytes as Uint8Array<ArrayBuffer>);
      await w.close();
    }
  } catch (e) {
    await root.removeEntry(name, { recursive: true }).catch(() => undefined);
    throw e;
  }
}

function download(name: string, bytes: Uint8Array): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function exportPanel(backend: ExportBackend): HTMLElement {
  const fixed = [
    h('option', { value: DEFAULT_TEACHER.id }, DEFAULT_TEACHER.label),
    h('option', { value: 'picked' }, 'An HF model folder from disk — Llama, Qwen2/2.5, Qwen3 (config.json, *.safetensors, tokenizer.json)…'),
  ];
  const source = h('select', { id: 'export-source', class: 'wide' }, ...fixed);
  let runNames = new Map<string, string>(), loraRuns = new Set<string>();
  // A LoRA run also exports its adapters alone (for the base model): their options are listed only for one.
  const syncAdapterFormats = () => {
    const lora = loraRuns.has(source.value.slice(4));
    if (lora && adapterGroup.parentNode !== format) format.append(adapterGroup);
    if (!lora && adapterGroup.parentNode === format) {
      const was = format.value;
      adapterGroup.remove();
      if ((ADAPTER_FORMATS as readonly string[]).includes(was)) format.value = EXPORT_FORMATS[0];
    }
  };
  const refreshRuns = async () => {
    const runs = await backend.runs().catch(() => []);
    // The user's (or the demo's) last choice; else the newest run, else the default teacher.
    const was = loadPref<string>('export-source', '');
    runNames = new Map(runs.map((r) => [r.id, r.name]));
    loraRuns = new Set(runs.filter((r) => r.lora).map((r) => r.id));
    source.replaceChildren(...runs.slice().reverse().map((r) => h('option', { value: `run:${r.id}` }, `Trained run “${r.name}” (checkpoint of step ${r.step})`)), ...fixed);
    source.value = [...source.options].some((o) => o.value === was) ? was : source.options[0]!.value;
    picker.hidden = source.value !== 'picked';
    syncAdapterFormats();
    compare.sourceChanged();
  };
  backend.onRunsChange(() => void refreshRuns());
  const picker = h('input', { id: 'export-files', type: 'file', webkitdirectory: true, multiple: true, hidden: true });
  source.addEventListener('change', () => { picker.hidden = source.value !== 'picked'; savePref('export-source', source.value); syncAdapterFormats(); compare.sourceChanged(); });
  const adapterGroup = h('optgroup', { label: 'The LoRA adapters alone (this run trained adapters on a frozen base)' }, ...ADAPTER_FORMATS.map((f) => h('option', { value: f }, ADAPTER_LABELS[f])));
  const format = h('select', { id: 'export-format' }, ...FORMATS.map(([v, l]) => h('option', { value: v }, l)));
  const compare = comparePanel(backend, () => (source.value.startsWith('run:') ? source.value.slice(4) : undefined), format);
  const zipButton = h('button', { id: 'export-zip' }, 'Download .zip');
  const canPickFolder = typeof (window as PickerWindow).showDirectoryPicker === 'function';
  const folderButton = canPickFolder ? h('button', { id: 'export-folder' }, 'Save to folder…') : null;
  const status = h('div', { id: 'export-status', class: 'muted' }, canPickFolder ? '' : 'This browser cannot write folders: exports download as .zip.');
  const list = h('ul', { id: 'export-list', class: 'muted' });

  async function run(to: 'zip' | 'folder'): Promise<void> {
    zipButton.disabled = true;
    if (folderButton) folderButton.disabled = true;
    status.className = 'muted';
    status.textContent = 'Preparing the export…'; // an earlier error goes with the new attempt
    delete status.dataset.done;
    list.replaceChildren();
    try {
      // Ask for the folder first: the picker needs the user's click, not a click from minutes ago.
      const root = to === 'folder' ? await (window as PickerWindow).showDirectoryPicker!({ mode: 'readwrite' }) : undefined;
      const picked = source.value === 'picked' ? [...(picker.files ?? [])] : undefined;
      if (picked && picked.length === 0) throw new Error('Pick the model folder first (config.json, model.safetensors, tokenizer.json).');
      const runId = source.value.startsWith('run:') ? source.value.slice(4) : undefined;
      const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'student';
      const base = runId ? safe(runNames.get(runId) ?? 'student') : picked ? (picked[0]!.webkitRelativePath.split('/')[0] || 'model') : DEFAULT_TEACHER.id;
      const name = `${base}-${format.value.replace('.', '')}`;
      // Only what an import reads; weights can be large, so the rest of the folder is not loaded.
      const files = await pickedModelFiles(picked ?? []);
      const req: ExportRequestData = {
        source: runId ? { runId } : picked ? { files } : { url: new URL(DEFAULT_TEACHER.path, document.baseURI).href }, format: format.value, name,
      };
      const res = await backend.exportModel(req, (m) => { status.textContent = `${m}…`; });
      const total = res.files.reduce((s, f) => s + f.bytes.length, 0);
      if (root) await writeFolder(root, name, res.files);
      else download(`${name}.zip`, zipFiles(res.files, { folder: name }));
      list.replaceChildren(...res.files.map((f) => h('li', {}, `${name}/${f.path} — ${formatBytes(f.bytes.length)}`)));
      status.className = 'ok';
      status.textContent = `${root ? 'Saved' : 'Downloaded'} ${name}${root ? '/' : '.zip'}: ${res.files.length} files, ${formatBytes(total)}, ${res.params.toLocaleString('en')} parameters.`;
      status.dataset.done = 'ok';
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') status.textContent = 'Cancelled.';
      else showError(status, e, { onDismiss: () => { status.className = 'muted'; } });
      status.dataset.done = 'error';
    } finally {
      zipButton.disabled = false;
      if (folderButton) folderButton.disabled = false;
    }
  }
  void refreshRuns();
  zipButton.addEventListener('click', () => void run('zip'));
  folderButton?.addEventListener('click', () => void run('folder'));
  return h('div', {},
    h('label', {}, 'Model ', source), ' ', picker, h('br', {}), h('label', {}, 'Format ', format), h('br', {}),
    h('p', {}, zipButton, ' ', folderButton), status, list, h('h3', {}, 'What each format costs'), compare.node);
}
