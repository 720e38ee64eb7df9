// The registry of kernel checks run by the self-test (app, CLI) and the GPU test suite.
import type { KernelCheck } from '../kernels/check.ts';
import { activationChecks } from '../kernels/activation/activation.check.ts';
import { attentionChecks } from '../kernels/attention/attention.check.ts';
import { decodeChecks } from '../kernels/attention/decode.check.ts';
import { dropoutChecks } from '../kernels/dropout/dropout.check.ts';
import { embeddingChecks } from '../kernels/embedding/embedding.check.ts';
import { hiddenChecks } from '../kernels/hidden/hidden.check.ts';
import { lossChecks } from '../kernels/loss/loss.check.ts';
import { uldChecks } from '../kernels/loss/uld.check.ts';
import { matmulChecks, matmulHalfChecks } from '../kernels/matmul/matmul.check.ts';
import { normChecks } from '../kernels/norm/norm.check.ts';
import { optimChecks } from '../kernels/optim/optim.check.ts';
import { ropeChecks } from '../kernels/rope/rope.check.ts';

export const ALL_CHECKS: readonly KernelCheck[] = [
  ...matmulChecks, ...matmulHalfChecks, ...lossChecks, ...uldChecks, ...hiddenChecks, ...normChecks, ...ropeChecks, ...activationChecks, ...embeddingChecks,
  ...attentionChecks, ...decodeChecks, ...optimChecks, ...dropoutChecks,
];

/** The quick self-test: the first registered check of every kernel (one shape each; the full set takes minutes on a
 *  software adapter). */
export const QUICK_CHECKS: readonly KernelCheck[] = ALL_CHECKS.filter((c, i) => ALL_CHECKS.findIndex((d) => d.kernel === c.kernel) === i);

export type SelftestScope = 'quick' | 'full';
