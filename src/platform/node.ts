// The platform, part 3 of 3: a GPUDevice in Node from Dawn. Node-only (never imported by the app bundle).
//   1. $DAWN_NODE (a dawn.node addon path, as on the GPU machine; see shared/gpu/README.md), else npm `webgpu`.
//   2. The real GPU through Vulkan; if there is none and $VK_ICD_FILENAMES is unset, SwiftShader, the CPU
//      Vulkan driver inside Debian's chromium package.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { GpuUnavailableError, openDevice, type GpuContext } from './gpu.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Device → its Dawn instance, so the instance lives exactly as long as the device is reachable. */
const liveInstances = new WeakMap<GPUDevice, GPU>();

let dawn: { mod: DawnModule; source: string } | undefined;

async function loadDawn(): Promise<{ mod: DawnModule; source: string }> {
  if (dawn) return dawn;
  const path = process.env.DAWN_NODE;
  let mod: DawnModule;
  let source: string;
  try {
    if (path) {
      mod = createRequire(import.meta.url)(path) as DawnModule;
      source = `DAWN_NODE=${path}`;
    } else {
      mod = (await import('webgpu')) as unknown as DawnModule;
      source = 'webgpu package';
    }
  } catch (e) {
    throw new GpuUnavailableError(
      `Could not load Dawn (${path ? `DAWN_NODE=${path}` : "npm package 'webgpu'"}): ${(e as Error).message}. ` +
        'Run `npm ci`, or point DAWN_NODE at a dawn.node built for this platform.',
    );
  }
  // GPUBufferUsage, GPUMapMode, ... as globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  dawn = { mod, source };
  return dawn;
}

export interface NodeGpuOptions {
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles, e.g. 'enable-dawn-features=allow_unsafe_apis'. */
  dawnFlags?: string[];
}

export async function acquireNodeGpu(opts: NodeGpuOptions = {}): Promise<GpuContext> {
  const { mod, source } = await loadDawn();
  // The GPU (Dawn instance) object must outlive the device: if it is garbage-collected, Dawn's event processing
  // aborts the process (std::system_error in InstanceBase::ProcessEvents). Keep it alive with the device.
  let instance: GPU | undefined;
  const request = () => {
    instance = mod.create(opts.dawnFlags ?? []);
    return instance.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  };
  let adapter = await request();
  let how = source;
  const userIcd = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  if (!adapter && !userIcd && existsSync(SWIFTSHADER_ICD)) {
    // The Vulkan loader re-reads its driver list at each instance creation, so a fresh Dawn instance sees this.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    adapter = await request();
    how = `${source} + SwiftShader fallback`;
  }
  if (!adapter) {
    const tried = userIcd
      ? `the Vulkan driver(s) named by VK_ICD_FILENAMES/VK_DRIVER_FILES (${userIcd})`
      : existsSync(SWIFTSHADER_ICD)
        ? `the system's Vulkan drivers and SwiftShader (${SWIFTSHADER_ICD})`
        : `the system's Vulkan drivers; SwiftShader is not installed at ${SWIFTSHADER_ICD}`;
    throw new GpuUnavailableError(
      `No WebGPU adapter from Dawn (${source}); tried ${tried}. On a machine without a GPU install the CPU ` +
        'driver: `apt-get install -y chromium libvulkan1` (Debian). With a GPU, install its Vulkan driver.',
    );
  }
  const ctx = await openDevice(adapter, 'node-dawn', how);
  liveInstances.set(ctx.device, instance!);
  return ctx;
}
