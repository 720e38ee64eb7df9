// The one typed protocol between the page and the engine worker. The in-thread engine (src/engine/engine.ts)
// and the comlink proxy of workers/engine.worker.ts implement the same interface; progress and run events arrive
// through callbacks (comlink proxies across the worker boundary); errors keep name, message and stack.
import type { JudgeGrade, JudgeItem } from './elicit/judge.ts';
import type { AdapterReport } from './platform/gpu.ts';
import type { SelftestScope } from './engine/checks.ts';
import type { SelftestProgress, SelftestReport } from './engine/selftest.ts';
import type { ExportFileData, ExportRequestData, ExportResultData } from './engine/export.ts';
import type { FormatComparison, FormatCost } from './engine/runs/compare-formats.ts';
import type {
  EngineTeacher, EvalReport, GenerateRequest, GenerateResult, RunEvent, RunInfo, RunLog, RunPlan, RunSpec,
} from './engine/runs/types.ts';

export type { AdapterReport, ExportFileData, ExportRequestData, ExportResultData, FormatComparison, FormatCost, SelftestProgress, SelftestReport };
export type * from './engine/runs/types.ts';

export interface EngineApi {
  /** Acquires the GPU (once) and reports adapter, limits and features. */
  gpuInfo(): Promise<AdapterReport>;
  /** Runs the kernels against their CPU references at odd shapes: every registered check ('full', the default) or
   *  the first check of each kernel ('quick'). */
  selftest(onProgress?: (p: SelftestProgress) => void, scope?: SelftestScope): Promise<SelftestReport>;
  /** Builds the files of one export format; progress as short messages. */
  exportModel(req: ExportRequestData, onProgress?: (message: string) => void): Promise<ExportResultData>;

  /** Checks a run before it exists: model and parameter count, memory against the adapter's limits, data needs
   *  (reading a model folder it names first: progress as short messages). */
  planRun(spec: RunSpec, onProgress?: (message: string) => void): Promise<RunPlan>;
  /** Keeps picked model files in the engine (send them transferred, once); specs name them by the key returned
   *  ({ held: key }) until the page reloads. */
  holdFolder(files: Record<string, Uint8Array>): Promise<string>;
  /** Drops a held folder. */
  releaseFolder(key: string): Promise<void>;
  /** Stores a new run (status 'created'): validates, snapshots the dataset's records, makes the tokenizer. */
  createRun(spec: RunSpec, onProgress?: (e: RunEvent) => void): Promise<RunInfo>;
  /** Trains a run from its last checkpoint (or the start) until done, paused or failed; resolves with it then. */
  /** `judge`: an RL run judged by the teacher asks the page for each answer's grade (the page's active teacher). */
  runRun(runId: string, onEvent?: (e: RunEvent) => void, judge?: (items: JudgeItem[]) => Promise<JudgeGrade[]>): Promise<RunInfo>;
  /** Asks a running run to stop after its current step (it saves a checkpoint there). */
  pauseRun(runId: string): Promise<void>;
  listRuns(): Promise<RunInfo[]>;
  /** A run and everything it logged (steps, evals, events, samples), oldest first. */
  runHistory(runId: string): Promise<{ run: RunInfo; logs: RunLog[] }>;
  deleteRun(runId: string): Promise<void>;
  /** Held-out loss/perplexity of a run's latest checkpoint, against its teacher when it has one (or `teacher`). */
  evaluate(req: { runId: string; teacher?: EngineTeacher }, onProgress?: (message: string) => void): Promise<EvalReport>;
  /** Each GGUF storage (F32, F16, Q8_0, Q4_K_M, Q4_0) of a run's latest checkpoint: file size and held-out perplexity. */
  compareFormats(runId: string, onProgress?: (message: string) => void): Promise<FormatComparison>;
  /** Text from a run's latest checkpoint or from a teacher folder, on the GPU with a KV cache. */
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** K distinct-seed samples of a run's student for one prompt (the Data stage's feedback and self-knowledge). */
  sampleStudent(runId: string, prompt: string, k: number, opts: { maxNewTokens: number; temperature: number; seed: number }): Promise<string[]>;
}
