// The platform, part 2 of 3: a GPUDevice from navigator.gpu, in a page or a worker.
import { GpuUnavailableError, openDevice, type GpuContext } from './gpu.ts';

export async function acquireBrowserGpu(
  powerPreference: GPUPowerPreference = 'high-performance',
): Promise<GpuContext> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.gpu) {
    const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
    throw new GpuUnavailableError(
      secure === false
        ? 'WebGPU is unavailable because this page is not a secure context: open it over https:// or from ' +
            'http://localhost / http://127.0.0.1.'
        : 'This browser has no WebGPU (navigator.gpu is undefined). Use Chrome or Edge 113+, Safari 26+, or ' +
            'Firefox 141+ on Windows; on Linux Chrome may need chrome://flags/#enable-unsafe-webgpu.',
    );
  }
  const adapter = await nav.gpu.requestAdapter({ powerPreference });
  if (!adapter) {
    throw new GpuUnavailableError(
      'WebGPU is present but offered no GPU adapter: the GPU or its driver may be blocklisted, or hardware ' +
        'acceleration is off. Check chrome://gpu (or about:support), enable hardware acceleration, update the ' +
        'GPU driver, and reload.',
    );
  }
  return openDevice(adapter, 'browser', 'navigator.gpu');
}
