import { describe, expect, it } from 'vitest';
import { alignTeacherLogits, checkTeacherIds } from '../../src/train/vocab-align.ts';

describe('teacher/student vocabularies that differ by padding', () => {
  it('drops the wider teacher padding columns and pads a narrower teacher with probability 0', () => {
    // 2 rows, teacher width 5 (3 real tokens + 2 padding), student width 4 (3 real + 1 padding).
    const t = Float32Array.of(1, 2, 3, 99, 99, 4, 5, 6, 99, 99);
    const a = alignTeacherLogits(t, 2, 5, 4, 3);
    expect([...a.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...a.subarray(4, 7)]).toEqual([4, 5, 6]);
    expect(a[3]).toBeLessThan(-1e29);
    expect(a[7]).toBeLessThan(-1e29);
    const same = Float32Array.of(1, 2);
    expect(alignTeacherLogits(same, 1, 2, 2)).toBe(same);
    expect(() => alignTeacherLogits(t, 2, 5, 4, 5)).toThrow(/differ beyond padding: 5 real tokens, teacher width 5, student width 4/);
    expect(() => alignTeacherLogits(t, 3, 5, 4)).toThrow(/10 values, expected N·Vt = 3·5/);
  });
  it('rejects top-k ids outside the real vocabulary', () => {
    expect(() => checkTeacherIds([0, 2, 7, 1], 2, 5)).toThrow(/id 7 \(row 1, slot 0\) is outside the student's vocabulary of 5/);
    expect(() => checkTeacherIds([0, 4], 2, 5)).not.toThrow();
  });
});
