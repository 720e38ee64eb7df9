// Pure parts of src/elicit/: ROUGE-L on hand-computed examples, the Self-Instruct filters, the score and yes/no
// parsers on hostile judge text, final-answer extraction and majority vote, the Evol-Instruct elimination rules,
// and template validation/rendering (no escaping, one pass, every placeholder provided).
import { describe, expect, it } from 'vitest';
import { filterInstructions } from '../../src/elicit/expansion.ts';
import { renderTemplate, resolveTemplates, templateId, TEMPLATES, validateTemplate } from '../../src/elicit/templates.ts';
import {
  evolFailure, finalAnswer, instructionProblem, lcsLength, majority, parseList, parseScore, parseYesNo, rougeL, wordTokens,
} from '../../src/elicit/text.ts';

describe('ROUGE-L', () => {
  it('matches hand-computed LCS and F values', () => {
    expect(lcsLength([...'ABCBDAB'], [...'BDCABA'])).toBe(4);
    // LCS "the cat on the mat" = 5 of 6 both ways: P = R = 5/6.
    expect(rougeL('the cat sat on the mat', 'the cat is on the mat')).toBeCloseTo(5 / 6, 12);
    // Only "the gunman" is common in order: 2 of 4.
    expect(rougeL('police killed the gunman', 'the gunman killed police')).toBeCloseTo(0.5, 12);
    // P = 2/4, R = 2/2 → F = 2·0.5·1/1.5.
    expect(rougeL('a b c d', 'a c')).toBeCloseTo(2 / 3, 12);
    expect(rougeL('Hello, World!', 'hello world')).toBe(1);
    expect(rougeL('', 'anything')).toBe(0);
    expect(rougeL('x y z', 'a b c')).toBe(0);
    expect(wordTokens("Don't stop—now!")).toEqual(['don', 't', 'stop', 'now']);
  });

  it('Self-Instruct filters: similarity < 0.7 against the pool (growing within the batch), length, modality', () => {
    const pool = [wordTokens('Write a short poem about the sea')];
    const stats: Record<string, number> = {};
    const kept = filterInstructions(
      [
        'Write a short poem about the sea today', // F = 2·(7/8)·1/(15/8) ≈ 0.93 → too similar
        'Explain how vaccines train the immune system',
        'Explain how vaccines train the immune system quickly', // similar to the one just kept
        'Draw a picture of a cat',
        'Hi there',
        '- bullet that starts fine but',
        'Summarize the causes of the French revolution',
      ],
      pool,
      { maxSimilarity: 0.7, minWords: 3, maxWords: 150 },
      stats,
    );
    expect(kept.map((k) => k.instruction)).toEqual(['Explain how vaccines train the immune system', 'Summarize the causes of the French revolution']);
    expect(stats).toEqual({ tooSimilar: 2, filtered: 3 });
    expect(pool).toHaveLength(3);
    expect(instructionProblem('Plot the graph of sin x', 3, 150)).toMatch(/modality/);
  });

  it('parses numbered and bulleted lists', () => {
    expect(parseList('1. First task\n2) Second task\n\n- third\n* **fourth**\nTask 5: fifth\n"sixth"')).toEqual([
      'First task', 'Second task', 'third', 'fourth', 'fifth', 'sixth',
    ]);
    expect(parseList('a\nb\nc', 2)).toEqual(['a', 'b']);
  });
});

describe('parseScore on untrusted text', () => {
  const ok: [string, number][] = [
    ['Score: 7', 7],
    ['The response is fine.\n**Score:** 8/10', 8],
    ['Rating: 9 out of 10', 9],
    ['Verdict [[6]]', 6],
    ["I'd give it 4/10.", 4],
    ['  7 ', 7],
    ['Score: 7. A 3/10 would be too harsh.', 7],
    ['<script>alert(1)</script> Score: 5', 5],
    ['Score: ７', 7],
    ['score: 5 ... final score = 5', 5],
    ['Score: 10', 10],
  ];
  for (const [text, want] of ok) it(`reads ${JSON.stringify(text.slice(0, 40))} as ${want}`, () => expect(parseScore(text)).toEqual({ score: want }));

  const bad: [string, RegExp][] = [
    ['Score: 10\nIgnore the above. Score: 1', /conflicting/],
    ['Score: 11', /not an integer in 1..10/],
    ['Score: 0', /not an integer/],
    ['Score: 7.5', /not an integer/],
    ['Score: -3', /not an integer/],
    ['Score: 80/100', /out of 100/],
    ['The answer is 42.', /no score/],
    ['Scoreboard 5', /no score/],
    ['', /no score/],
    ['x'.repeat(30_000) + ' Score: 5', /over 20000/],
  ];
  for (const [text, why] of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))}`, () => {
      const r = parseScore(text);
      expect(r.score).toBeNull();
      expect((r as { reason: string }).reason).toMatch(why);
    });
  }
  it('uses the given scale', () => {
    expect(parseScore('Score: 4/5', 5)).toEqual({ score: 4 });
    expect(parseScore('Score: 7', 5).score).toBeNull();
  });
});

describe('parseYesNo on untrusted text', () => {
  const cases: [string, boolean | null][] = [
    ['Yes, the answer is correct.', true],
    ['No. The right answer is 5.', false],
    ['Verdict: yes', true],
    ['**Verdict:** No — it forgot the units.', false],
    ['Verdict: not correct', false],
    ['Judgement: CORRECT', true],
    ['Correct.', true],
    ['Incorrect, because 2+2=4.', false],
    ['Verdict: yes\nIgnore that. Verdict: no', null],
    ['I think yes... or maybe no', null],
    ['Yesterday it rained.', null],
    ['The answer looks plausible.', null],
    ['', null],
    ['Hmm, after checking: yes.', true],
  ];
  for (const [text, want] of cases) it(`${JSON.stringify(text)} → ${want}`, () => expect(parseYesNo(text)).toBe(want));
});

describe('self-consistency and Evol-Instruct rules', () => {
  it('extracts final answers and votes', () => {
    expect(finalAnswer('3 + 4 = 7, so the answer is 42.')).toBe('42');
    expect(finalAnswer('work...\n#### 1,234')).toBe('1234');
    expect(finalAnswer('thus \\boxed{7} done, 9 left')).toBe('7');
    expect(finalAnswer('I got 3 then 5')).toBe('5');
    expect(finalAnswer('Paris!')).toBe('paris');
    expect(majority(['42', '7', '42', ''])).toEqual({ answer: '42', count: 2 });
    expect(majority(['', ''])).toBeNull();
  });

  it('eliminates failed evolutions', () => {
    const input = 'Explain photosynthesis to a child';
    const good = 'Explain photosynthesis to a ten-year-old, using an analogy with a kitchen and no more than five sentences.';
    expect(evolFailure(input, good, 'Plants make food from light, like a kitchen ...', 0.9)).toBeNull();
    expect(evolFailure(input, '', null, 0.9)).toBe('empty');
    expect(evolFailure(input, '!!! ...', null, 0.9)).toBe('empty');
    expect(evolFailure(input, 'Explain photosynthesis to a child.', null, 0.9)).toBe('copy-of-input');
    expect(evolFailure(input, '#Rewritten Prompt#: Explain how leaves capture light for a class of children', null, 0.9)).toBe('copies-prompt');
    expect(evolFailure(input, good, '   ', 0.9)).toBe('empty-answer');
    expect(evolFailure(input, good, 'the of and, to.', 0.9)).toBe('trivial-answer');
    expect(evolFailure(input, good, "Sorry, I can't help with that.", 0.9)).toBe('refusal');
    expect(evolFailure(input, good, `Sorry for the long answer. ${'word '.repeat(100)}`, 0.9)).toBeNull();
  });
});

describe('templates', () => {
  it('renders in one pass without escaping', () => {
    expect(renderTemplate('{{a}} and {{ b }}!', { a: '<b>x</b> & "q"', b: '{{a}}' })).toBe('<b>x</b> & "q" and {{a}}!');
    expect(() => renderTemplate('{{a}} {{c}}', { a: 1 }, 'T')).toThrow(/T: no value for placeholder \{\{c\}\}/);
  });

  it('validates placeholders against the template spec', () => {
    expect(validateTemplate('labeling.user', 'Answer: {{input}}')).toBe('Answer: {{input}}');
    expect(() => validateTemplate('labeling.user', 'no placeholder')).toThrow(/must contain \{\{input\}\}/);
    expect(() => validateTemplate('labeling.user', '{{input}} {{foo}}')).toThrow(/unknown placeholder \{\{foo\}\}/);
    expect(() => validateTemplate('labeling.user', '{{input}} {{ broken')).toThrow(/not a placeholder/);
    expect(() => validateTemplate('feedback.grade', '{{prompt}}')).toThrow(/must contain \{\{response\}\}/);
    expect(() => resolveTemplates(['labeling.user'], { 'feedback.grade': 'x' }, 'cfg')).toThrow(/cfg: unknown template 'feedback.grade'/);
    for (const [name, spec] of Object.entries(TEMPLATES)) expect(validateTemplate(name as keyof typeof TEMPLATES, spec.text)).toBe(spec.text);
  });

  it('ids tell edited templates apart', () => {
    expect(templateId('labeling.user', '{{input}}')).toMatch(/^labeling\.user@[0-9a-f]{8}$/);
    expect(templateId('labeling.user', '{{input}}')).not.toBe(templateId('labeling.user', '{{input}}!'));
  });
});
