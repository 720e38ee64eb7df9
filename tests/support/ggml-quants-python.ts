// Two independent GGML block quantizers, driven from Python (the .venv-torch of torch-python.ts, which has the
// `gguf` package): gguf-py's `gguf.quants` (numpy; quantizes Q8_0/Q4_0/Q5_0, dequantizes every type) and llama.cpp
// itself — `ggml_quantize_chunk` of the libggml-base.so that npm node-llama-cpp ships, called through ctypes, the
// very function `llama-quantize` calls (no importance matrix → the *_ref quantizers).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runPythonJson, torchPython } from './torch-python.ts';

let python: string | undefined;
/** torchPython() once: its check imports torch, which takes seconds. */
const py = (): string => (python ??= torchPython());

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
  const raw = runPythonJson<Array<{ deq: string; gguf: string | null; llama: string }>>(py(), SCRIPT, {
    lib: ggmlBaseLibrary(),
    cases: cases.map((c) => ({ type: c.type, cols: c.cols, x: b64(c.x), ours: b64(c.ours) })),
  });
  return raw.map((r) => {
    const d = bytes(r.deq);
    return { deq: new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4), gguf: r.gguf === null ? null : bytes(r.gguf), llama: bytes(r.llama) };
  });
}

// llama.cpp's llama-quantize as a library call: llama_model_quantize of node-llama-cpp's libllama (struct layout of
// llama_model_quantize_params from the llama.h of the llama.cpp that node-llama-cpp bundles), then both files read
// by gguf-py's GGUFReader and compared tensor by tensor; gguf.quants dequantizes every tensor of ours.
const COMPARE_SCRIPT = `
import sys, json, base64, ctypes, os
import numpy as np
import gguf
from gguf import quants
req = json.load(sys.stdin)
d = os.path.dirname(req['lib'])
ctypes.CDLL(req['lib'], mode=ctypes.RTLD_GLOBAL)
for f in sorted(os.listdir(d)):
    if f.startswith('libggml.') and f.endswith('.so'): ctypes.CDLL(os.path.join(d, f), mode=ctypes.RTLD_GLOBAL)
llama = ctypes.CDLL(next(os.path.join(d, f) for f in sorted(os.listdir(d)) if f.startswith('libllama.') and f.endswith('.so')))
class Params(ctypes.Structure):
    _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int), ('output_tensor_type', ctypes.c_int),
                ('token_embedding_type', ctypes.c_int), ('allow_requantize', ctypes.c_bool), ('quantize_output_tensor', ctypes.c_bool),
                ('only_copy', ctypes.c_bool), ('pure', ctypes.c_bool), ('keep_split', ctypes.c_bool), ('dry_run', ctypes.c_bool),
                ('imatrix', ctypes.c_void_p), ('kv_overrides', ctypes.c_void_p), ('tt_overrides', ctypes.c_void_p),
                ('prune_layers', ctypes.c_void_p), ('max_buf_size', ctypes.c_size_t)]
llama.llama_model_quantize_default_params.restype = Params
llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
llama.llama_model_quantize.restype = ctypes.c_uint32
p = llama.llama_model_quantize_default_params()
assert p.quantize_output_tensor and not p.pure and p.imatrix is None, 'unexpected default params (struct layout?)'
p.nthread = 1
p.ftype = req['ftype']
rc = llama.llama_model_quantize(req['f32'].encode(), req['llama'].encode(), ctypes.byref(p))
assert rc == 0, f'llama_model_quantize returned {rc}'
def kv(r, k):
    f = r.get_field(k)
    return None if f is None else f.contents()
ours, theirs = gguf.GGUFReader(req['ours']), gguf.GGUFReader(req['llama'])
tl = {t.name: t for t in theirs.tensors}
out = {'kvs': {k: [kv(ours, k), kv(theirs, k)] for k in ['general.file_type', 'general.quantization_version']}, 'tensors': []}
for t in ours.tensors:
    o = tl.get(t.name)
    a = np.asarray(t.data).view(np.uint8).ravel()
    b = None if o is None else np.asarray(o.data).view(np.uint8).ravel()
    same = b is not None and a.size == b.size and bool((a == b).all())
    deq = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()
    out['tensors'].append({'name': t.name, 'ours': t.tensor_type.name, 'llama': None if o is None else o.tensor_type.name,
        'bytes': int(a.size), 'same': same, 'deq': base64.b64encode(deq.tobytes()).decode()})
out['llamaOnly'] = [n for n in tl if n not in {t.name for t in ours.tensors}]
print(json.dumps(out))
`;

export interface QuantizeComparison {
  /** [ours, llama.cpp's] of general.file_type and general.quantization_version. */
  kvs: Record<string, [unknown, unknown]>;
  tensors: Array<{ name: string; ours: string; llama: string | null; bytes: number; same: boolean; deq: Float32Array }>;
  llamaOnly: string[];
}

/** Quantizes `f32Path` with llama.cpp (ftype = llama_ftype) into `llamaPath` and compares it with `oursPath`. */
export function compareWithLlamaQuantize(f32Path: string, oursPath: string, llamaPath: string, ftype: number): QuantizeComparison {
  const raw = runPythonJson<Omit<QuantizeComparison, 'tensors'> & { tensors: Array<Omit<QuantizeComparison['tensors'][number], 'deq'> & { deq: string }> }>(
    py(), COMPARE_SCRIPT, { lib: ggmlBaseLibrary(), f32: f32Path, ours: oursPath, llama: llamaPath, ftype },
  );
  return {
    ...raw,
    tensors: raw.tensors.map((t) => {
      const d = bytes(t.deq);
      return { ...t, deq: new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4) };
    }),
  };
}
