// The app: one page that walks a newcomer through distillation in five steps — pick a teacher, make or import
// data, train a student on this GPU, evaluate it against the teacher, export it — plus a one-click demo that runs
// the whole walk on what the app ships. GPU details and the kernel self-test sit behind the "GPU" disclosure.
// Each stage lives in its own folder under src/ui/ (view, state, worker client); they share only app-state.ts.
import { dataStage } from './data/data-stage.ts';
import { demoCard } from './demo/demo.ts';
import { h } from './dom.ts';
import { evaluateStage } from './evaluate/evaluate-stage.ts';
import { exportStage } from './export/export-stage.ts';
import { gpuPanel } from './shell/gpu-panel.ts';
import { stepper, type StageDef } from './shell/stepper.ts';
import { teacherStage } from './teacher/teacher-stage.ts';
import { trainStage } from './train/train-stage.ts';
import './style.css';

const STAGES: StageDef[] = [
  { id: 'teacher', title: 'Teacher', what: 'The large model to learn from: a model running in this tab (transformers.js on WebGPU) or any OpenAI-compatible API.', panel: teacherStage },
  { id: 'data', title: 'Data', what: 'Distillation data in this browser (IndexedDB): the teacher labels, expands, curates or grades prompts, or you import a dataset.', panel: dataStage },
  { id: 'train', title: 'Train', what: 'A small student trained on this GPU by our WebGPU kernels: SFT, token-level KD (KL, JSD, TVD, …), DPO, on-policy.', panel: trainStage },
  { id: 'evaluate', title: 'Evaluate', what: 'Held-out perplexity, KL to the teacher, top-1 agreement, and teacher and student side by side on your prompts.', panel: evaluateStage },
  { id: 'export', title: 'Export', what: 'The trained student as safetensors + HF config, ONNX for transformers.js, or GGUF for llama.cpp and Ollama.', panel: exportStage },
];

const root = document.getElementById('app')!;
root.replaceChildren();
const gpu = gpuPanel();
const { nav, main } = stepper(STAGES);
root.append(
  h('header', {},
    h('div', { class: 'brand' }, h('h1', {}, 'Distill'), h('p', {}, 'Distil a small, private, task-specific model from a large one — in this tab, on your GPU.'))),
  demoCard(),
  nav,
  main,
  h('footer', {}, gpu),
);
