// The METHODS table and the Train form's field table: each method's TrainConfig and checks, and the RunSpec the
// form makes from its settings (exactly the chosen method's own settings, from the table).
import { describe, expect, it } from 'vitest';
import { METHODS, methodOf, teachersOf } from '../../src/engine/runs/methods.ts';
import { RUN_METHODS, type RunSpec, type SpecOf } from '../../src/engine/runs/types.ts';
import { DEFAULT_SETTINGS, FIELDS, fieldShown, PRETRAINED, settingsProblem, specOf } from '../../src/ui/train/train-fields.ts';

const base = { name: 'x', datasetId: 'd', preset: 'nano', tokenizer: { kind: 'bpe' as const, vocabSize: 300 }, format: 'continuation' as const, train: {}, sampleEvery: 0, samplePrompts: [] as string[], heldOutEvery: 5 };

describe('METHODS', () => {
  it('has one entry per method, each with its trainer, data and objective', () => {
    expect(Object.keys(METHODS).sort()).toEqual([...RUN_METHODS].sort());
    const cfg = (spec: object) => methodOf(spec as RunSpec).trainConfig(spec as RunSpec);
    expect(cfg({ ...base, method: 'sft' })).toMatchObject({ objective: 'none', kdWeight: 0, ceWeight: 1 });
    expect(cfg({ ...base, method: 'kd', kdSource: 'store-topk' })).toMatchObject({ objective: 'fkl', kdWeight: 0.5, ceWeight: 0.5, topkPolicy: 'uniform' });
    expect(cfg({ ...base, method: 'on-policy', onPolicy: { lambda: 1, maxNewTokens: 4, temperature: 1 } })).toMatchObject({ objective: 'jsd', kdWeight: 1, ceWeight: 0 });
    expect(cfg({ ...base, method: 'dpo', pairBeta: 0.1, train: { objective: 'fkl' } })).toMatchObject({ objective: 'none', kdWeight: 0 });
    expect(METHODS.dpo.trainer).toBe('pairs');
    expect(METHODS.ipo.data).toBe('pairs');
    expect(METHODS.kd.trainer).toBe('tokens');
    expect(methodOf({ method: 'kd' }).runsTeacher({ ...base, method: 'kd', kdSource: 'dense' } as RunSpec)).toBe(true);
    expect(methodOf({ method: 'kd' }).runsTeacher({ ...base, method: 'kd', kdSource: 'store-topk' } as RunSpec)).toBe(false);
    expect(METHODS.reward).toMatchObject({ data: 'pairs', trainer: 'reward', generates: false });
    expect(METHODS.rl).toMatchObject({ data: 'records', trainer: 'rl', generates: true });
    expect(cfg({ ...base, method: 'reward' })).toMatchObject({ objective: 'none', kdWeight: 0 });
    expect(() => methodOf({ method: 'ppo' as never })).toThrow(/method must be one of sft, kd, on-policy, dpo, ipo, reward, rl, got "ppo"/);
  });
  it('checks the reward model\'s margin and RL\'s rewards and settings, saying what to change', () => {
    const check = (spec: object) => methodOf(spec as RunSpec).check(spec as RunSpec);
    const rl = { G: 4, beta: 0.1, advantage: 'grpo', maxNewTokens: 8, temperature: 1 };
    expect(check({ ...base, method: 'reward' })).toEqual([]);
    expect(check({ ...base, method: 'reward', rewardMargin: 'x' })[0]).toMatch(/margin must be a number/);
    expect(check({ ...base, method: 'rl', rewardRun: 'r1', rl })).toEqual([]);
    expect(check({ ...base, method: 'rl', rl })[0]).toMatch(/RL needs rewards: pick a reward model run .* or the teacher as a judge/);
    const judge = { ref: { kind: 'remote', baseURL: 'http://127.0.0.1:1/v1', model: 'm' }, label: 'm' };
    expect(check({ ...base, method: 'rl', judge, rl })).toEqual([]);
    expect(check({ ...base, method: 'rl', judge, rewardRun: 'r1', rl })[0]).toMatch(/not both/);
    expect(check({ ...base, method: 'rl', judge: { ...judge, scoreMax: 1 }, rl })[0]).toMatch(/judge.scoreMax must be an integer in 2..100/);
    expect(check({ ...base, method: 'rl', rewardRun: 'r1', rl: { ...rl, G: 1, maxNewTokens: 99999 } }).join(' ')).toMatch(/rl.G .* 2..64.*rl.maxNewTokens/);
  });
  it('checks each method’s own settings with a message saying what to change', () => {
    const check = (spec: object) => methodOf(spec as RunSpec).check(spec as RunSpec);
    expect(check({ ...base, method: 'dpo', pairBeta: 0 })).toEqual(['DPO needs β > 0']);
    expect(check({ ...base, method: 'kd', kdSource: 'dense' })[0]).toMatch(/dense-logit KD runs the teacher model on this GPU/);
    expect(check({ ...base, method: 'on-policy', onPolicy: { lambda: 2, maxNewTokens: 4, temperature: 1 } }).join()).toMatch(/λ .* must be in \[0, 1\]/);
    expect(check({ ...base, method: 'sft' })).toEqual([]);
  });
  it('checks a teacher mixture: dense KD and on-policy only, one weight ≥ 0 per teacher (spec.teacher first), each error naming the field', () => {
    const t = (label: string) => ({ label, source: { url: `http://x/${label}/` } });
    const kd = { ...base, method: 'kd', kdSource: 'dense', teacher: t('a') };
    const check = (spec: object) => methodOf(spec as RunSpec).check(spec as RunSpec);
    expect(check({ ...kd, mixture: { teachers: [t('b')], weights: [2, 1] } })).toEqual([]);
    expect(check({ ...kd, mixture: { teachers: [t('b')], weights: [1] } }).join()).toMatch(/mixture.weights: give one weight per teacher, spec.teacher's first: 2 numbers, got 1/);
    expect(check({ ...kd, mixture: { teachers: [t('b')], weights: [1, -1] } }).join()).toMatch(/mixture.weights\[1\] must be a finite number ≥ 0, got -1/);
    expect(check({ ...kd, mixture: { teachers: [t('b')], weights: [0, 0] } }).join()).toMatch(/mixture.weights sum to 0/);
    expect(check({ ...kd, mixture: { teachers: [], weights: [1] } }).join()).toMatch(/mixture.teachers: give at least one teacher/);
    expect(check({ ...kd, mixture: { teachers: [{ label: '' }], weights: [1, 1] } }).join()).toMatch(/mixture.teachers\[0\]: expected \{label, source\}/);
    expect(check({ ...kd, kdSource: 'store-topk', mixture: { teachers: [t('b')], weights: [1, 1] } }).join()).toMatch(/mixture: a teacher mixture is for token-level KD from the teachers' dense logits.*not KD from stored top-k rows/);
    expect(check({ ...base, method: 'on-policy', teacher: t('a'), onPolicy: { lambda: 1, maxNewTokens: 4, temperature: 1 }, mixture: { teachers: [t('b')], weights: [1, 1] } })).toEqual([]);
    expect(check({ ...base, method: 'dpo', pairBeta: 0.1, mixture: { teachers: [t('b')], weights: [1, 1] } }).join()).toMatch(/or on-policy distillation, not DPO/);
    expect(check({ ...base, method: 'sft', mixture: { teachers: [t('b')], weights: [1, 1] } }).join()).toMatch(/not SFT/);
    expect(teachersOf({ ...kd, mixture: { teachers: [t('b')], weights: [3, 1] } } as RunSpec)).toEqual({ teachers: [t('a'), t('b')], weights: [0.75, 0.25] });
    expect(teachersOf(kd as RunSpec)).toEqual({ teachers: [t('a')], weights: [1] });
    expect(METHODS.kd.describe({ ...kd, mixture: { teachers: [t('b')], weights: [1, 1] } } as SpecOf<'kd'>, METHODS.kd.trainConfig(kd as SpecOf<'kd'>))).toBe('token KD (dense, mixture of 2 teachers, fkl)');
  });
  it('takes LoRA dropout in [0, 1) into the TrainConfig, and refuses 1 saying so', () => {
    const cfg = (dropout: number) => methodOf({ method: 'sft' }).trainConfig({ ...base, method: 'sft', train: { lora: { rank: 4, alpha: 8, dropout } } } as RunSpec);
    expect(cfg(0.1).lora).toMatchObject({ rank: 4, dropout: 0.1 });
    expect(cfg(0).lora!.dropout).toBe(0);
    expect(() => cfg(1)).toThrow(/dropout must be in \[0, 1\), got 1/);
    expect(() => cfg(-0.1)).toThrow(/dropout must be in \[0, 1\)/);
  });
});

describe('the Train form’s field table', () => {
  it('has unique keys and element ids, and defaults for every setting', () => {
    expect(new Set(FIELDS.map((f) => f.key)).size).toBe(FIELDS.length);
    expect(new Set(FIELDS.map((f) => f.id)).size).toBe(FIELDS.length);
    expect(Object.keys(DEFAULT_SETTINGS)).toHaveLength(FIELDS.length);
  });
  it('makes a spec with exactly the chosen method’s settings', () => {
    const s = { ...DEFAULT_SETTINGS, datasetId: 'd', name: 'n' };
    const kd = specOf({ ...s, method: 'kd', kdSource: 'dense', ceWeight: 0.25 }, undefined);
    expect(kd).toMatchObject({ method: 'kd', kdSource: 'dense', train: { ceWeight: 0.25, kdWeight: 0.75, objective: 'fkl' } });
    expect(kd).not.toHaveProperty('pairBeta');
    const dpo = specOf({ ...s, method: 'dpo', pairBeta: 0.3 }, undefined);
    expect(dpo).toMatchObject({ method: 'dpo', pairBeta: 0.3 });
    expect(dpo).not.toHaveProperty('kdSource');
    expect(dpo.train).not.toHaveProperty('objective');
    const op = specOf({ ...s, method: 'on-policy', lambda: 0.25, sampleTokens: 7 }, undefined);
    expect(op).toMatchObject({ method: 'on-policy', onPolicy: { lambda: 0.25, maxNewTokens: 7, temperature: 1 } });
    expect(op.train).not.toHaveProperty('ceWeight');
    // The warmup is what the user set (the plan warns when it outlasts the run), not silently clipped.
    expect(specOf({ ...s, steps: 10, warmup: 20 }, undefined).train.warmupSteps).toBe(20);
  });
  it('has a LoRA dropout field beside rank and α: shown for LoRA on a pretrained model, sent in the spec, validated in [0, 1)', () => {
    const lora = { ...DEFAULT_SETTINGS, datasetId: 'd', name: 'n', preset: PRETRAINED, pretrained: 'a/b', adapt: 'lora' as const };
    const f = FIELDS.find((x) => x.key === 'loraDropout')!;
    expect(f.default).toBe(0);
    expect(fieldShown(f, lora)).toBe(true);
    expect(fieldShown(f, { ...lora, adapt: 'full' })).toBe(false);
    expect(specOf({ ...lora, loraDropout: 0.1 }, undefined).train.lora).toMatchObject({ rank: 16, alpha: 32, dropout: 0.1 });
    expect(specOf(lora, undefined).train.lora!.dropout).toBe(0);
    expect(settingsProblem({ ...lora, loraDropout: 0.1 })).toBeUndefined();
    expect(settingsProblem({ ...lora, loraDropout: 1 })).toMatch(/LoRA dropout must be at least 0 and below 1, got 1: set it to 0 \(no dropout\) or a share such as 0.05 or 0.1/);
    expect(settingsProblem({ ...lora, loraDropout: -0.5 })).toMatch(/got -0.5/);
    expect(settingsProblem({ ...lora, loraDropout: Number.NaN })).toMatch(/got no number/);
    // Full fine-tuning ignores the LoRA fields.
    expect(settingsProblem({ ...lora, adapt: 'full', loraDropout: 1 })).toBeUndefined();
  });
  it('a second teacher (mixture): shown for dense KD and on-policy, its weight once it is named; in the spec as weights [1 − w, w]', () => {
    const s = { ...DEFAULT_SETTINGS, method: 'kd' as const, kdSource: 'dense' as const };
    const field = (k: string) => FIELDS.find((f) => f.key === k)!;
    expect(fieldShown(field('mixTeacher'), s)).toBe(true);
    expect(fieldShown(field('mixWeight'), s)).toBe(false);
    expect(fieldShown(field('mixTeacher'), { ...s, kdSource: 'store-topk' })).toBe(false);
    expect(fieldShown(field('mixTeacher'), { ...s, method: 'on-policy' })).toBe(true);
    expect(fieldShown(field('mixTeacher'), { ...s, method: 'sft' })).toBe(false);
    const named = { ...s, mixTeacher: 'models/other/', mixWeight: 0.25 };
    expect(fieldShown(field('mixWeight'), named)).toBe(true);
    const second = { label: 'other', source: { url: 'http://x/models/other/' } };
    const teacher = { label: 't', source: { url: 'http://x/models/t/' } };
    expect(specOf(named, teacher, undefined, second).mixture).toEqual({ teachers: [second], weights: [0.75, 0.25] });
    expect(specOf({ ...named, kdSource: 'store-topk' }, teacher, undefined, second).mixture).toBeUndefined();
    expect(settingsProblem({ ...named, mixWeight: 1.5 })).toMatch(/second teacher's weight must be between 0 and 1, got 1.5/);
    expect(settingsProblem({ ...named, mixWeight: Number.NaN })).toMatch(/got no number/);
    expect(settingsProblem(named)).toBeUndefined();
  });

  it('shows a method’s settings only for methods that have them', () => {
    const shown = (method: string) => FIELDS.filter((f) => fieldShown(f, { ...DEFAULT_SETTINGS, method: method as 'kd' })).map((f) => f.key);
    expect(shown('sft')).not.toContain('kdSource');
    expect(shown('kd')).toEqual(expect.arrayContaining(['kdSource', 'ceWeight', 'objective', 'temperature']));
    expect(shown('dpo')).toContain('pairBeta');
    expect(shown('dpo')).not.toContain('objective');
    expect(shown('on-policy')).toEqual(expect.arrayContaining(['lambda', 'sampleTokens', 'objective']));
  });
});
