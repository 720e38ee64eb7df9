// Token alignment between a teacher and a student, checked, never assumed: token-level KD puts the teacher's
// distribution over ITS ids next to the student's logits over the student's ids, which is only meaningful when an
// id is the same token on both sides. A teacher and a student are aligned when
//   - their tokenizers have the same number of ids,
//   - every id is the same vocabulary string on both sides (all ids are compared),
//   - the same text encodes to the same ids (multilingual probe strings, the special tokens, the caller's samples),
//   - the teacher's logits cover the vocabulary (a wider lm_head is padding and is dropped; a narrower one is not).
// When they are not, token-level KD is unavailable and the result says why and what to do instead: sequence-level
// KD (SeqKD: the student trained by SFT on the teacher's generated answers, in its own tokenizer).

/** One side: what the check reads of a tokenizer. */
export interface AlignmentSide {
  /** Number of ids of the tokenizer (not the logits' width). */
  vocabSize: number;
  /** Text → ids without the post-processor's additions (HF add_special_tokens=False). */
  encode(text: string): number[];
  /** One id's vocabulary string (e.g. "Ġthe", "▁the", an added token's content); undefined for a hole. */
  idToToken(id: number): string | undefined;
}

export interface TokenAlignment {
  aligned: boolean;
  /** What differs (empty when aligned), at most a few examples of each kind. */
  problems: string[];
  /** How much was compared. */
  idsCompared: number;
  probesCompared: number;
  /** For the page: what token-level KD can do with this pair, and the alternative when it cannot. */
  message: string;
}

/** Text that exercises the pre-tokenizers: scripts, digits, whitespace runs, punctuation, emoji, code. */
export const ALIGNMENT_PROBES: readonly string[] = [
  'The quick brown fox jumps over the lazy dog.',
  "  leading spaces, trailing tabs\t\t and\nnew\n\nlines\r\n  ",
  'Numbers: 0 7 42 1234567 3.14159 -2e10 1,000,000',
  'Grüße aus München – naïve café, déjà vu; Ærøskøbing',
  'Привет, мир! Как дела?',
  '你好，世界。我们今天学习知识蒸馏。',
  'こんにちは世界、カタカナとひらがな',
  '안녕하세요 세계',
  'مرحبا بالعالم',
  'नमस्ते दुनिया',
  'Emoji 🤗🚀👩‍👩‍👧‍👦 and symbols ©®™ ∑∫√ ≤≥',
  "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
  "I'm, you're, they'll, we've, she'd, it's, DON'T",
];

/**
 * Compares teacher and student tokenizers (see the file comment). `teacherWidth` is the width of the teacher's
 * logits (its config's vocab_size); `samples` are more texts to compare, e.g. a few of the dataset's records.
 */
export function checkTokenAlignment(teacher: AlignmentSide, student: AlignmentSide, o: { teacherWidth: number; samples?: readonly string[]; specialTokens?: readonly string[] }): TokenAlignment {
  const problems: string[] = [];
  let idsCompared = 0, probesCompared = 0;
  if (teacher.vocabSize !== student.vocabSize) problems.push(`the teacher's tokenizer has ${teacher.vocabSize} ids, the student's ${student.vocabSize}`);
  if (o.teacherWidth < student.vocabSize) problems.push(`the teacher's logits cover ${o.teacherWidth} ids, fewer than the student's ${student.vocabSize} tokens`);
  if (problems.length === 0) {
    const bad: string[] = [];
    for (let id = 0; id < student.vocabSize; id++) {
      idsCompared++;
      const a = teacher.idToToken(id), b = student.idToToken(id);
      if (a !== b) {
        bad.push(`id ${id} is ${JSON.stringify(a)} for the teacher, ${JSON.stringify(b)} for the student`);
        if (bad.length >= 3) break;
      }
    }
    if (bad.length) problems.push(...bad);
    const texts = [...ALIGNMENT_PROBES, (o.specialTokens ?? []).join(' x '), ...(o.samples ?? [])];
    const diff: string[] = [];
    for (const t of texts) {
      if (t === '') continue;
      probesCompared++;
      const a = teacher.encode(t), b = student.encode(t);
      if (a.length !== b.length || a.some((id, i) => id !== b[i])) {
        diff.push(`${JSON.stringify(t.slice(0, 40))} encodes to [${a.slice(0, 8).join(', ')}${a.length > 8 ? ', …' : ''}] for the teacher, [${b.slice(0, 8).join(', ')}${b.length > 8 ? ', …' : ''}] for the student`);
        if (diff.length >= 3) break;
      }
    }
    problems.push(...diff);
  }
  const aligned = problems.length === 0;
  return {
    aligned, problems, idsCompared, probesCompared,
    message: aligned
      ? `token-level KD is available: teacher and student share the tokenizer (${idsCompared.toLocaleString('en')} ids and ${probesCompared} texts compared)`
      : `token-level KD is unavailable: the teacher's tokens are not the student's (${problems[0]}). Train by sequence-level KD instead (SeqKD: SFT on the teacher's answers), or give the student the teacher's tokenizer.`,
  };
}
