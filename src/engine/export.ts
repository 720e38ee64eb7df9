// Export in the engine worker: a model source (the embedded default teacher, or an HF folder the user picked) →
// the files of one export format. Runs off the page's main thread; the files come back transferred, not copied.
import { exportModel, isExportFormat, EXPORT_FORMATS } from '../export/index.ts';
import { importHfFolder } from '../export/import.ts';
import { paramLayout } from '../model/params.ts';
import type { ExportRequestData as ExportRequest, ExportResultData as ExportResult } from '../protocol.ts';

const NEEDED = ['config.json', 'model.safetensors', 'tokenizer.json'];

async function fetchFolder(base: string, onProgress?: (message: string) => void): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const name of NEEDED) {
    onProgress?.(`fetching ${name}`);
    const url = new URL(name, base.endsWith('/') ? base : `${base}/`).href;
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(`export: cannot fetch ${url}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new Error(`export: ${url} answered HTTP ${res.status}`);
    files.set(name, new Uint8Array(await res.arrayBuffer()));
  }
  return files;
}

export async function runExport(req: ExportRequest, onProgress?: (message: string) => void): Promise<ExportResult> {
  if (!isExportFormat(req.format)) throw new Error(`export: unknown format '${req.format}' (have: ${EXPORT_FORMATS.join(', ')})`);
  if ('runId' in req.source) throw new Error('export: runs are not built yet');
  const folder = 'url' in req.source ? await fetchFolder(req.source.url, onProgress) : new Map(Object.entries(req.source.files));
  onProgress?.('reading the model');
  const imp = importHfFolder(folder);
  if (!imp.tokenizer) throw new Error('export: the model folder has no tokenizer.json');
  onProgress?.(`writing ${req.format}`);
  const files = exportModel({ config: imp.config, params: imp.params, tokenizer: imp.tokenizer }, req.format);
  const params = paramLayout(imp.config).count;
  return { name: req.name, files, params };
}
