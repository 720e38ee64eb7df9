// The registry of kernel checks run by the self-test (app, CLI) and the GPU test suite.
import type { KernelCheck } from './check.ts';
import { matmulChecks } from '../kernels/matmul/matmul.check.ts';

export const ALL_CHECKS: readonly KernelCheck[] = [...matmulChecks];
