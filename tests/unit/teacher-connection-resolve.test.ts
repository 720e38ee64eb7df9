// resolveJobTeacher (src/ui/teacher/resolve.ts) for the refs a job stores, in Node against the real test server:
// a remote ref without its key says to enter it in the Teacher stage and press Resume; with the key held in memory
// it rebuilds a RemoteTeacher (loaded on the first request) that sends the key to that base URL only; a keyless server needs none; a local ref
// from picked files says to load it again; an unknown kind is refused. (No localStorage in Node: keys stay in
// memory, as with "Remember" off.)
import { afterEach, describe, expect, it } from 'vitest';
import { LazyRemoteTeacher } from '../../src/teacher/lazy-remote.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { setApiKey } from '../../src/ui/teacher/keys.ts';
import { resolveJobTeacher } from '../../src/ui/teacher/resolve.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';

const MODEL = 'bigram-test-model';
const KEY = 'sk-resolve-5e6f7a8b9c';
const servers: OpenAiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('resolveJobTeacher', () => {
  it('a remote ref whose key this page does not have: enter it in the Teacher stage, then press Resume', async () => {
    const s = await startOpenAiServer({ apiKey: KEY });
    servers.push(s);
    const ref = { kind: 'remote', preset: 'custom', baseURL: s.url, model: MODEL, usesKey: true };
    await expect(resolveJobTeacher(ref)).rejects.toThrow(/needs its API key.*enter the API key in the Teacher stage, then press Resume/);
    // The key entered in the Teacher stage (held in memory): the teacher comes back and answers, key only to that URL.
    setApiKey(`${s.url}/`, KEY, false);
    const t = await resolveJobTeacher(ref);
    expect(t.kind).toBe('remote');
    expect(t.teacher).toBeInstanceOf(LazyRemoteTeacher);
    expect(await (t.teacher as LazyRemoteTeacher).client()).toBeInstanceOf(RemoteTeacher);
    expect(JSON.stringify(t.teacher.settings)).not.toContain(KEY);
    expect(t.ref).toEqual({ kind: 'remote', preset: 'custom', baseURL: s.url, model: MODEL, usesKey: true });
    expect(JSON.stringify(t.ref)).not.toContain(KEY);
    const r = await t.teacher.chat([{ role: 'user', content: 'Hello' }], { maxTokens: 4 });
    expect(r.choices[0]!.finishReason).toBeTruthy();
    expect(s.stats.authorizations).toEqual([`Bearer ${KEY}`]);
  });

  it('a keyless server needs no key; a key preset without the usesKey flag asks for one', async () => {
    const s = await startOpenAiServer();
    servers.push(s);
    const t = await resolveJobTeacher({ kind: 'remote', preset: 'vllm', baseURL: s.url, model: MODEL, usesKey: false });
    await t.teacher.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 2 });
    expect(s.stats.authorizations).toEqual([null]);
    await expect(resolveJobTeacher({ kind: 'remote', preset: 'openai', baseURL: 'https://api.openai.com/v1', model: 'gpt-4o-mini' }))
      .rejects.toThrow(/enter the API key in the Teacher stage/);
  });

  it('a local teacher from picked files cannot be loaded again without the user', async () => {
    await expect(resolveJobTeacher({ kind: 'local', model: 'my-model', source: null, device: 'webgpu' }))
      .rejects.toThrow('this job\'s teacher "my-model" came from files picked on this computer: load it again in the Teacher stage, then press Resume');
    await expect(resolveJobTeacher({ kind: 'other', model: 'x' })).rejects.toThrow(/unknown kind/);
  });
});
