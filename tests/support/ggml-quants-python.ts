// Two independent GGML block quantizers, driven from Python (the .venv-torch of torch-python.ts, which has the
// `gguf` package): gguf-py's `gguf.quants` (numpy; quantizes Q8_0/Q4_0/Q5_0, dequantizes every type) and llama.cpp
// itself — `ggml_quantize_chunk` of the libggml-base.so that npm node-llama-cpp ships, called through ctypes, the
// very function `llama-quantize` calls (no importance matrix → the *_ref quantizers).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runPythonJson, torchPython } from './torch-python.ts';

/** libggml-base.so of node-llama-cpp's prebuilt CPU binaries for this platform. */
export function ggmlBaseLibrary(): string {
  const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
  let dir: string;
  try {
    dir = dirname(dirname(createRequire(import.meta.url).resolve(pkg))); // <pkg>/dist/index.js → <pkg>
  } catch {
    throw new Error(`ggml oracle: npm package ${pkg} (node-llama-cpp's prebuilt binaries) is not installed`);
  }
  const lib = join(dir, 'bins', `${process.platform}-${process.arch}`, process.platform === 'darwin' ? 'libggml-base.dylib' : 'libggml-base.so');
  if (!existsSync(lib)) throw new Error(`ggml oracle: no ${lib}`);
  return lib;
}

const SCRIPT = `
import sys, json, base64, ctypes
import numpy as np
import gguf
from gguf import quants
req = json.load(sys.stdin)
lib = ctypes.CDLL(req['lib'])
qc = lib.ggml_quantize_chunk
qc.restype = ctypes.c_size_t
qc.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
res = []
for c in req['cases']:
    qt = gguf.GGMLQuantizationType[c['type']]
    block, tsize = gguf.GGML_QUANT_SIZES[qt]
    x = np.frombuffer(base64.b64decode(c['x']), dtype=np.float32).reshape(-1, c['cols'])
    ours = np.frombuffer(base64.b64decode(c['ours']), dtype=np.uint8).reshape(x.shape[0], -1)
    out = {'deq': base64.b64encode(quants.dequantize(ours, qt).astype(np.float32).tobytes()).decode()}
    try:
        out['gguf'] = base64.b64encode(quants.quantize(x, qt).tobytes()).decode()
    except NotImplementedError:
        out['gguf'] = None
    dst = np.zeros(x.shape[0] * (c['cols'] // block) * tsize, dtype=np.uint8)
    n = qc(int(qt), x.ctypes.data, dst.ctypes.data, 0, x.shape[0], c['cols'], None)
    assert n == dst.size, (n, dst.size)
    out['llama'] = base64.b64encode(dst.tobytes()).decode()
    res.append(out)
print(json.dumps(res))
`;

export interface OracleCase {
  type: string;
  /** Row-major values, rows of `cols`. */
  x: Float32Array;
  cols: number;
  /** Our quantized bytes of x. */
  ours: Uint8Array;
}

export interface OracleResult {
  /** gguf.quants.dequantize of our bytes. */
  deq: Float32Array;
  /** gguf.quants.quantize of x (null where gguf-py cannot quantize the type). */
  gguf: Uint8Array | null;
  /** llama.cpp's ggml_quantize_chunk of x. */
  llama: Uint8Array;
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

export function ggmlOracle(cases: OracleCase[]): OracleResult[] {
  const raw = runPythonJson<Array<{ deq: string; gguf: string | null; llama: string }>>(torchPython(), SCRIPT, {
    lib: ggmlBaseLibrary(),
    cases: cases.map((c) => ({ type: c.type, cols: c.cols, x: b64(c.x), ours: b64(c.ours) })),
  });
  return raw.map((r) => {
    const d = bytes(r.deq);
    return { deq: new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4), gguf: r.gguf === null ? null : bytes(r.gguf), llama: bytes(r.llama) };
  });
}
