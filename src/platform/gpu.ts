// The platform, part 1 of 3: turning a `GPU` object (navigator.gpu in a browser, Dawn's in Node) into a
// GPUDevice with the adapter's real limits and the optional features we use, plus a report of what we got.
// Only src/platform/* touches navigator.gpu or Dawn; everything else receives a GpuContext.

/** Limits we raise from WebGPU's defaults to what the adapter really offers. */
export const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;
export type RequestedLimit = (typeof REQUESTED_LIMITS)[number];

/** Optional features the kernels can use when present; none is required. */
export const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

export interface AdapterReport {
  /** 'browser' (navigator.gpu) or 'node-dawn' (npm webgpu or $DAWN_NODE). */
  platform: 'browser' | 'node-dawn';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True when the adapter is a software rasteriser (SwiftShader, WARP, ...). */
  isFallbackAdapter: boolean;
  /** How the adapter was found, e.g. 'navigator.gpu', 'webgpu package', 'DAWN_NODE=/x', '+ SwiftShader fallback'. */
  source: string;
  /** The limits the device was created with (= the adapter's) for REQUESTED_LIMITS. */
  limits: Record<RequestedLimit, number>;
  /** Optional features enabled on the device. */
  features: OptionalFeature[];
  /** Every feature the adapter offers (informational). */
  adapterFeatures: string[];
}

export interface GpuContext {
  device: GPUDevice;
  report: AdapterReport;
  /** Has `feature` been enabled on the device? */
  has(feature: OptionalFeature): boolean;
  /** Destroys the device (Node's process cannot exit while a Dawn device is alive). */
  release(): void;
  /** GPU errors no error scope caught since the last call (validation, out-of-memory, internal), oldest first. */
  takeErrors(): string[];
}

/** No usable WebGPU: the message says why and what the user can do. */
export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /swiftshader|llvmpipe|lavapipe|warp|software|basic render/.test(text);
}

/** Requests a device with the adapter's real limits and the optional features it has. */
export async function openDevice(
  adapter: GPUAdapter,
  platform: AdapterReport['platform'],
  source: string,
): Promise<GpuContext> {
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    label: 'distill-engine',
    requiredLimits,
    requiredFeatures: features as GPUFeatureName[],
  });
  const limits = {} as Record<RequestedLimit, number>;
  for (const name of REQUESTED_LIMITS) limits[name] = device.limits[name];
  const info = adapter.info;
  const report: AdapterReport = {
    platform,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: isSoftwareAdapter(info),
    source,
    limits,
    features,
    adapterFeatures: [...adapter.features].map(String).sort(),
  };
  device.lost.then((e) => {
    if (e.reason !== 'destroyed') console.error(`WebGPU device lost (${e.reason}): ${e.message}`);
  });
  // Without this, a validation error outside an error scope is silently dropped and the dispatch does nothing.
  const errors: string[] = [];
  device.addEventListener('uncapturederror', (ev) => {
    const msg = (ev as GPUUncapturedErrorEvent).error.message;
    errors.push(msg);
    console.error(`WebGPU error: ${msg}`);
  });
  return {
    device,
    report,
    has: (f) => features.includes(f),
    release: () => device.destroy(),
    takeErrors: () => errors.splice(0),
  };
}

/** One-line human summary, e.g. "google swiftshader (software) via webgpu package". */
export function describeAdapter(r: AdapterReport): string {
  const name = [r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' ') || 'unknown adapter';
  return `${name}${r.isFallbackAdapter ? ' (software)' : ''} via ${r.source}`;
}
