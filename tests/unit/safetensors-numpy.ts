// The independent safetensors reader for tests: python3's json + struct + numpy (no `safetensors` package here),
// checking the format's layout rules on its own and returning every tensor's shape and values.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Reads a safetensors file with the standard library and numpy; checks the format's layout rules on its own. */
export const NUMPY_READER = String.raw`
import json, struct, sys
import numpy as np
b = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', b[:8])
assert n % 8 == 0, 'header length not a multiple of 8'
h = json.loads(b[8:8 + n].decode('utf-8'))
meta = h.pop('__metadata__', {})
data = b[8 + n:]
spans = sorted((v['data_offsets'][0], v['data_offsets'][1]) for v in h.values())
pos = 0
for s, e in spans:
    assert s == pos, 'gap or overlap'
    pos = e
assert pos == len(data), 'data not fully covered'
out = {}
for k, v in h.items():
    s, e = v['data_offsets']
    raw = data[s:e]
    if v['dtype'] == 'F32': a = np.frombuffer(raw, dtype='<f4')
    elif v['dtype'] == 'F16': a = np.frombuffer(raw, dtype='<f2').astype(np.float32)
    elif v['dtype'] == 'BF16': a = (np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
    else: raise SystemExit('dtype ' + v['dtype'])
    a = a.reshape(v['shape'])
    out[k] = {'shape': list(a.shape), 'values': [float(x) for x in a.reshape(-1)]}
print(json.dumps({'metadata': meta, 'tensors': out}))
`;

/** Whether python3 with numpy is available (required: .ci/run installs it). */
export const hasNumpy = (): boolean => spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

export interface NumpyFile {
  metadata: Record<string, string>;
  tensors: Record<string, { shape: number[]; values: number[] }>;
}

/** Reads a safetensors file's bytes with NUMPY_READER. */
export function numpyRead(bytes: Uint8Array): NumpyFile {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  try {
    writeFileSync(join(dir, 'a.safetensors'), bytes);
    return JSON.parse(execFileSync('python3', ['-c', NUMPY_READER, join(dir, 'a.safetensors')], { encoding: 'utf8', maxBuffer: 1 << 28 })) as NumpyFile;
  } finally {
    rmSync(dir, { recursive: true });
  }
}
