// The platform, a side door: whether this browser context (page or worker) has a usable WebGPU adapter, asked
// without opening a device. The local teacher uses it to choose ONNX Runtime's 'webgpu' or 'wasm' backend; it
// never touches the GPU itself (ONNX Runtime opens its own device). Outside a browser (Node) there is no
// navigator.gpu and the answer is "none".

export interface WebGpuProbe {
  /** true when navigator.gpu offered an adapter. */
  available: boolean;
  /** Why not, in words, when available is false. */
  reason: string;
}

export async function probeWebGpu(): Promise<WebGpuProbe> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.gpu) return { available: false, reason: 'this context has no WebGPU (navigator.gpu is undefined)' };
  try {
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { available: true, reason: '' } : { available: false, reason: 'navigator.gpu offered no adapter' };
  } catch (e) {
    return { available: false, reason: `requestAdapter failed: ${(e as Error)?.message ?? String(e)}` };
  }
}
