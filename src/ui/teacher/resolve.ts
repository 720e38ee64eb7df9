// Finding a job's teacher again after a reload: a job stores ActiveTeacher.ref (never a key); this turns such a
// ref back into an ActiveTeacher (loading the local model again, or rebuilding the remote client with the key
// held in memory or remembered on this device), or throws an error that says what the user must do.
//   local   {kind:'local', model, source: ReloadableSource | null, device}: the active teacher when it is the same
//           model, else the source loaded again into the teacher worker (it becomes the active teacher unless a
//           remote one is active); picked files cannot be loaded again without the user.
//   remote  {kind:'remote', preset, baseURL, model, usesKey?}: the active teacher when it is the same server and
//           model, else a new RemoteTeacher with the key for that base URL and the stage's limits and prices.
import { hostOf } from '../../teacher/connection.ts';
import { activeTeacher, type ActiveTeacher } from '../app-state.ts';
import type { Json } from '../../store/schema.ts';
import { PRESETS } from '../../teacher/presets.ts';
import { PRESET_NAMES, type PresetName } from '../../teacher/types.ts';
import { apiKeyFor, keyBase } from './keys.ts';
import { loadedTeacher, reloadableSource } from './teacher-client.ts';
import { loadLocal, loadRemotePrefs, localActive, remoteActive, restored } from './session.ts';


export async function resolveJobTeacher(ref: { [k: string]: Json }): Promise<ActiveTeacher> {
  const model = typeof ref.model === 'string' ? ref.model : '';
  if (ref.kind === 'remote') return resolveRemote(ref, model);
  if (ref.kind !== undefined && ref.kind !== 'local') throw new Error(`this job's teacher has an unknown kind ${JSON.stringify(ref.kind)}`);

  await restored(); // a reload may be loading the active teacher right now
  const active = activeTeacher();
  if (active?.kind === 'local' && active.model === model) return active;
  const cur = loadedTeacher();
  if (cur && cur.info.model === model) return await localActive(cur.info, cur.source ?? { kind: 'files', files: new Map(), name: model });
  const source = reloadableSource(ref.source);
  if (!source) {
    throw new Error(`this job's teacher${model ? ` "${model}"` : ''} came from files picked on this computer: load it again in the Teacher stage, then press Resume`);
  }
  // A job that ran on WASM resumes on WASM, else on the best this browser has now.
  return await loadLocal(source, ref.device === 'wasm' ? 'wasm' : 'auto', undefined, 'if-local');
}

function resolveRemote(ref: { [k: string]: Json }, model: string): ActiveTeacher {
  const baseURL = typeof ref.baseURL === 'string' ? keyBase(ref.baseURL) : '';
  const preset: PresetName = (PRESET_NAMES as readonly unknown[]).includes(ref.preset) ? (ref.preset as PresetName) : 'custom';
  if (baseURL === '' || model === '') throw new Error("this job's remote teacher is incomplete (no base URL or model): pick the teacher again in the Teacher stage");
  const active = activeTeacher();
  if (active?.kind === 'remote' && keyBase(String(active.ref.baseURL)) === baseURL && active.model === model) return active;
  const apiKey = apiKeyFor(baseURL);
  const needsKey = typeof ref.usesKey === 'boolean' ? ref.usesKey : PRESETS[preset].needsApiKey;
  if (needsKey && apiKey === '') {
    throw new Error(
      `this job's teacher "${model}" at ${hostOf(baseURL)} needs its API key, which this page does not have (it was not remembered on this device): ` +
        'enter the API key in the Teacher stage, then press Resume',
    );
  }
  const form = loadRemotePrefs();
  const same = keyBase(form.baseURL) === baseURL;
  const settings = {
    preset, baseURL, model,
    maxConcurrency: same ? form.maxConcurrency : 4, requestsPerMinute: same ? form.requestsPerMinute : 0,
    pricePer1MInput: same ? form.pricePer1MInput : 0, pricePer1MOutput: same ? form.pricePer1MOutput : 0,
  };
  return remoteActive({ settings, apiKey, logprobs: null, logprobsOff: false });
}
