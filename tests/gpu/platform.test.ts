// The platform module in Node: an adapter is found (a real GPU, or SwiftShader), its real limits and the
// optional features it has are requested, and the report says what we got. Fails (never skips) without one.
import { describe, expect, it } from 'vitest';
import { OPTIONAL_FEATURES, REQUESTED_LIMITS, describeAdapter } from '../../src/platform/gpu.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('acquireNodeGpu', () => {
  it('reports the adapter and where it came from', () => {
    const ctx = gpu();
    const r = ctx.report;
    expect(r.platform).toBe('node-dawn');
    expect(r.source).toMatch(/webgpu package|DAWN_NODE=/);
    expect(`${r.vendor}${r.architecture}${r.description}`.length).toBeGreaterThan(0);
    console.log(`adapter: ${describeAdapter(r)}`);
  });

  it('creates the device with the limits raised above the WebGPU defaults', () => {
    const ctx = gpu();
    for (const k of REQUESTED_LIMITS) {
      expect(ctx.device.limits[k], k).toBe(ctx.report.limits[k]);
    }
    // WebGPU defaults: 128 MiB binding, 16 KiB workgroup storage, 256 invocations. Every adapter we target offers more
    // binding size than the default; the others must at least be the defaults.
    expect(ctx.device.limits.maxStorageBufferBindingSize).toBeGreaterThan(128 * 1024 * 1024);
    expect(ctx.device.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    expect(ctx.device.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
  });

  it('enables exactly the optional features the adapter has', () => {
    const ctx = gpu();
    const expected = OPTIONAL_FEATURES.filter((f) => ctx.report.adapterFeatures.includes(f));
    expect(ctx.report.features).toEqual(expected);
    for (const f of expected) expect(ctx.device.features.has(f), f).toBe(true);
    for (const f of OPTIONAL_FEATURES) expect(ctx.has(f)).toBe(expected.includes(f));
  });
});
