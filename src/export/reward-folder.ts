// The Hugging Face folder of a reward model (issue #24): the family's *ForSequenceClassification (Llama, Qwen2,
// Qwen3) with one label — the model's tensors under their HF names without the language-model head, plus
// `score.weight` (1, C), the scalar head on the final-norm output of the last real token. config.json names the
// architecture and num_labels 1 and has a pad_token_id (HF finds the last token of each row by it), so
// AutoModelForSequenceClassification loads it and gives our scores. The rest is the causal LM folder's.
import { toHfTensors } from './hf-names.ts';
import { exportHfFolder, MODEL_CONFIG_METADATA_KEY } from './hf-folder.ts';
import { HF_FAMILIES } from './hf-config.ts';
import { writeSafetensors } from './safetensors.ts';
import { exportView, jsonFile, type ExportFile, type ExportInput } from './types.ts';
import { modelFamily } from '../model/config.ts';

/** model.safetensors (trunk + score.weight), config.json (…ForSequenceClassification, num_labels 1), the rest as a
 *  causal LM folder. `score` is the head (C). */
export function exportRewardFolder(input: ExportInput, score: ArrayLike<number>): ExportFile[] {
  const x = exportView(input);
  const C = x.config.hidden;
  if (score.length !== C) throw new Error(`exportRewardFolder: the score head has ${score.length} values, the model is ${C} wide`);
  for (let c = 0; c < C; c++) if (!Number.isFinite(score[c]!)) throw new Error(`exportRewardFolder: the score head's value ${c} is ${score[c]} (not finite): the run diverged; export an earlier checkpoint`);
  const lm = exportHfFolder(input);
  const kept = toHfTensors(x.config, x.params).filter((t) => t.name !== 'lm_head.weight').map((t) => ({ name: t.name, shape: t.shape, data: t.data }));
  kept.push({ name: 'score.weight', shape: [1, C], data: Float32Array.from(score) });
  const weights = writeSafetensors(kept, { dtype: 'F32', metadata: { [MODEL_CONFIG_METADATA_KEY]: JSON.stringify(x.config), 'webgpu_distill.head': 'reward' } });
  return lm.map((f) => {
    if (f.path === 'model.safetensors') return { path: f.path, bytes: weights };
    if (f.path !== 'config.json') return f;
    const config = JSON.parse(new TextDecoder().decode(f.bytes)) as Record<string, unknown>;
    const arch = HF_FAMILIES[modelFamily(x.config)].architecture.replace(/ForCausalLM$/, 'ForSequenceClassification');
    // Without a pad token HF cannot find a padded row's last token: the end-of-text token pads, as TRL's reward
    // trainer does for Llama.
    const pad = config.pad_token_id ?? config.eos_token_id;
    if (pad === null || pad === undefined) throw new Error('exportRewardFolder: the tokenizer has neither a pad nor an end-of-text token, so a padded row\'s last token cannot be found');
    return jsonFile('config.json', { ...config, architectures: [arch], num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 }, pad_token_id: pad, problem_type: 'regression' });
  });
}
