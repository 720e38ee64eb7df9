// The registry of kernel checks run by the self-test (app, CLI) and the GPU test suite.
import type { KernelCheck } from './check.ts';
import { attentionChecks } from '../kernels/attention/attention.check.ts';
import { lossChecks } from '../kernels/loss/loss.check.ts';
import { matmulChecks } from '../kernels/matmul/matmul.check.ts';
import { optimChecks } from '../kernels/optim/optim.check.ts';

export const ALL_CHECKS: readonly KernelCheck[] = [...matmulChecks, ...lossChecks, ...attentionChecks, ...optimChecks];
