// Choosing again among an ensemble job's stored answers (ensemble.ts): every record of an ensemble dataset keeps
// all its teachers' answers with their consensus scores and grades, so another rule — consensus, the judge's grade,
// or always one teacher (a baseline) — makes a new dataset without asking any teacher again. The source dataset is
// never changed: a choice is a new dataset whose records name the teacher of their answer. Also the per-teacher
// summary of a dataset (how often each teacher's answer was kept), which the CLI prints and the benchmark reads.
import type { RecordInput, StoredRecord } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import { chooseAnswer, ensembleChoiceOf, type EnsembleChoice, type EnsembleRule } from './ensemble.ts';
import { ElicitError } from './types.ts';

/** A rule to choose by: consensus, the judge's grade, or one teacher's answer (by model name). */
export type ChoiceRule = EnsembleRule | { teacher: string };

export interface TeacherTally {
  model: string;
  /** Answers this teacher gave (stored). */
  answers: number;
  /** Records whose kept answer is this teacher's. */
  kept: number;
  /** Mean consensus score of its answers. */
  meanConsensus: number;
  /** Mean judge grade of its graded answers (null: none graded). */
  meanGrade: number | null;
}

export interface EnsembleSummary {
  /** Records made by an ensemble job. */
  records: number;
  teachers: TeacherTally[];
}

const PAGE = 500;

async function* records(store: DistillStore, datasetId: string): AsyncGenerator<StoredRecord> {
  for (let offset = 0; ; offset += PAGE) {
    const page = await store.getRecords(datasetId, { offset, limit: PAGE });
    yield* page;
    if (page.length < PAGE) return;
  }
}

/** How often each teacher's answer was kept in `datasetId` (ensemble records only), teachers by first appearance. */
export async function ensembleSummary(store: DistillStore, datasetId: string): Promise<EnsembleSummary> {
  const by = new Map<string, { answers: number; kept: number; consensus: number; grades: number; gradeSum: number }>();
  let n = 0;
  for await (const r of records(store, datasetId)) {
    const e = ensembleChoiceOf(r.provenance);
    if (!e) continue;
    n++;
    e.answers.forEach((a, i) => {
      const t = by.get(a.teacher.model) ?? { answers: 0, kept: 0, consensus: 0, grades: 0, gradeSum: 0 };
      t.answers++;
      t.consensus += a.consensus;
      if (a.judge !== null) { t.grades++; t.gradeSum += a.judge; }
      if (i === e.chosen) t.kept++;
      by.set(a.teacher.model, t);
    });
  }
  return {
    records: n,
    teachers: [...by].map(([model, t]) => ({
      model, answers: t.answers, kept: t.kept, meanConsensus: t.answers ? t.consensus / t.answers : 0, meanGrade: t.grades ? t.gradeSum / t.grades : null,
    })),
  };
}

/** The index of the answer `rule` keeps among a record's answers (-1: none qualifies). */
export function choiceUnder(e: EnsembleChoice, rule: ChoiceRule): number {
  if (typeof rule === 'string') return chooseAnswer(e.answers, rule);
  const member = e.answers.find((a) => a.teacher.model === rule.teacher)?.member;
  return member === undefined ? -1 : chooseAnswer(e.answers, { member });
}

export interface RechooseResult {
  datasetId: string;
  /** Records written to the new dataset. */
  records: number;
  /** Ensemble records left out: no answer qualifies under the rule (e.g. no grade, or that teacher did not answer). */
  skipped: number;
}

function ruleName(rule: ChoiceRule): string {
  return typeof rule === 'string' ? rule : `teacher ${rule.teacher}`;
}

/**
 * A new dataset (named `name`, default "<source> — chosen by <rule>") with each ensemble record of `datasetId`
 * keeping the answer `rule` chooses; its provenance names that answer's teacher and the rule. Records of other
 * strategies are left out. Nothing is written when the source holds no ensemble record, or the judge rule is asked
 * of records that were never graded.
 */
export async function rechooseEnsemble(store: DistillStore, datasetId: string, rule: ChoiceRule, name?: string): Promise<RechooseResult> {
  const src = await store.getDataset(datasetId);
  if (!src) throw new ElicitError(`rechooseEnsemble: no dataset "${datasetId}"`);
  const out: RecordInput[] = [];
  let skipped = 0, ensembleRecords = 0, graded = 0;
  for await (const r of records(store, datasetId)) {
    const e = ensembleChoiceOf(r.provenance);
    if (!e) continue;
    ensembleRecords++;
    if (e.answers.some((a) => a.judge !== null)) graded++;
    const k = choiceUnder(e, rule);
    const last = r.messages.length - 1;
    if (k < 0 || r.messages[last]?.role !== 'assistant') { skipped++; continue; }
    const a = e.answers[k]!;
    const choice: EnsembleChoice = { ...e, rule: typeof rule === 'string' ? rule : e.rule, chosen: k };
    out.push({
      key: r.key,
      messages: [...r.messages.slice(0, last), { role: 'assistant', content: a.text }],
      provenance: { ...r.provenance, teacher: a.teacher, params: { ...r.provenance.params, ensemble: choice as never, chosen_by: ruleName(rule) } },
    });
  }
  if (ensembleRecords === 0) throw new ElicitError(`dataset "${src.name}" holds no answers of an ensemble job to choose among`);
  if (rule === 'judge' && graded === 0) throw new ElicitError(`dataset "${src.name}" was made without a judge: no answer has a grade (choose by consensus or by a teacher)`);
  if (out.length === 0) throw new ElicitError(`no record of "${src.name}" has an answer under the rule ${ruleName(rule)}`);
  const ds = await store.createDataset({ name: name ?? `${src.name} — chosen by ${ruleName(rule)}`.slice(0, 200) });
  await store.putRecords(ds.id, out); // one transaction: the new dataset is whole or empty
  return { datasetId: ds.id, records: out.length, skipped };
}
