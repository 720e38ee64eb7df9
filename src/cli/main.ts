// `npm run cli -- <command>`: the engine in Node on Dawn (a real GPU through Vulkan, or SwiftShader).
// Commands: info, selftest, train, elicit, export.
import { createEngine } from '../engine/engine.ts';
import { describeAdapter, GpuUnavailableError } from '../platform/gpu.ts';
import { acquireNodeGpu } from '../platform/node.ts';
import { elicitCommand } from '../elicit/cli.ts';
import { exportCommand } from './export.ts';
import { trainCommand } from './train.ts';

const USAGE = `usage: npm run cli -- <command> [--json]

commands:
  info       the WebGPU adapter, the limits the device got and the optional features enabled
  selftest   every kernel against its CPU reference at odd shapes (exit 1 on any failure)
  train      --config <file.json> [--init HF_DIR] [--steps N] [--until N] [--resume] [--out DIR] [--autotune]:
             train a student (--init: start from an exported/HF Llama folder and its tokenizer), JSON lines
  elicit     --base-url URL --model M --api-key-env VAR --strategy S --config file.json --out file.jsonl [--store DIR]:
             run an elicitation strategy against an OpenAI-compatible teacher into a durable store (default
             <out>.store); --resume continues a stopped or killed run, --export writes the JSONL of what the
             store holds ('elicit' alone lists its options)
  export     (--run DIR | --from HF_DIR) --out DIR [--format F] [--checkpoint NAME] [--zip] [--force]:
             a training run (checkpoint + tokenizer.json) or an HF Llama folder as safetensors | onnx | onnx-q8 | onnx-q4 |
             transformers.js (default: both in one folder) | gguf | gguf-f16 | gguf-q8_0 | gguf-q4_k_m | gguf-q4_0
  help       this text

options:
  --json     machine-readable output (one JSON object)

environment:
  DAWN_NODE          path of a dawn.node addon to use instead of npm 'webgpu'
  VK_ICD_FILENAMES   Vulkan driver manifest(s); unset → the system's, then SwiftShader`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'elicit') {
    // Ctrl-C / SIGTERM stop the job after committing what finished ('paused': --resume continues it).
    const ctl = new AbortController();
    const stop = () => { console.error('stopping: committing what finished (run again with --resume to continue)'); ctl.abort(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return elicitCommand(argv.slice(1), { env: process.env, log: (l) => console.error(l), signal: ctl.signal });
  }
  if (argv[0] === 'train' || argv[0] === 'export') {
    try {
      return argv[0] === 'export' ? await exportCommand(argv.slice(1)) : await trainCommand(argv.slice(1), () => acquireNodeGpu());
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
  }
  const json = argv.includes('--json');
  const unknown = argv.filter((a) => a.startsWith('-') && a !== '--json');
  const [command = 'help', ...rest] = argv.filter((a) => !a.startsWith('-'));
  if (unknown.length || rest.length) {
    console.error(`unknown argument(s): ${[...unknown, ...rest].join(' ')}\n\n${USAGE}`);
    return 2;
  }
  if (command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command !== 'info' && command !== 'selftest') {
    console.error(`unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const engine = createEngine(() => acquireNodeGpu());
  try {
    const report = await engine.gpuInfo();
    if (command === 'info') {
      if (json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(`adapter:  ${describeAdapter(report)}`);
        console.log(`features: ${report.features.join(', ') || '(none of timestamp-query, subgroups, shader-f16)'}`);
        console.log('limits:');
        for (const [k, v] of Object.entries(report.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
      }
      return 0;
    }
    const rep = await engine.selftest(json ? undefined : (p) => {
      if (p.last) console.log(`${p.last.ok ? 'ok  ' : 'FAIL'} ${p.last.kernel}_${p.last.variant} ${p.last.shape.padEnd(12)} ${p.last.detail}`);
    });
    if (json) console.log(JSON.stringify({ adapter: report, ...rep }, null, 2));
    else console.log(`${rep.ok ? 'all' : 'NOT all'} ${rep.cases.length} checks passed on ${describeAdapter(report)} (${(rep.ms / 1000).toFixed(1)} s)`);
    return rep.ok ? 0 : 1;
  } catch (e) {
    const err = e as Error;
    console.error(err instanceof GpuUnavailableError ? `error: ${err.message}` : err.stack ?? String(err));
    return 1;
  } finally {
    (await engine.gpu().catch(() => undefined))?.release();
  }
}

// Exit explicitly: Node does not exit by itself while Dawn holds the GPU.
main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
