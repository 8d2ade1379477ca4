import { OmniError } from '@omnidict/proto';
import { compileGlob } from '../../src/index.js';

// [pattern, key, expected]
const table: Array<[string, string, boolean]> = [
  ['', 'anything', true],
  ['*', '', true],
  ['*', 'abc', true],
  ['**', 'abc', true],
  ['abc', 'abc', true],
  ['abc', 'abcd', false],
  ['abc', 'ab', false],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ba', false],
  ['*c', 'abc', true],
  ['*c', 'abcd', false],
  ['a*c', 'ac', true],
  ['a*c', 'abbbc', true],
  ['a*c', 'abcb', false],
  ['a*b*c', 'aXbYc', true],
  ['a*b*c', 'aXcYb', false],
  ['*a*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
  ['user:*:name', 'user:42:name', true],
  ['user:*:name', 'user:42:email', false],
  ['h?llo', 'hello', true],
  ['h?llo', 'hllo', false],
  ['h?llo', 'heello', false],
  ['???', 'abc', true],
  ['???', 'ab', false],
  ['h[ae]llo', 'hello', true],
  ['h[ae]llo', 'hallo', true],
  ['h[ae]llo', 'hillo', false],
  ['h[a-c]t', 'hbt', true],
  ['h[a-c]t', 'hdt', false],
  ['h[c-a]t', 'hbt', true],
  ['[0-9][0-9]', '42', true],
  ['[0-9][0-9]', '4x', false],
  ['h[!e]llo', 'hallo', true],
  ['h[!e]llo', 'hello', false],
  ['h[^e]llo', 'hallo', true],
  ['h[^e]llo', 'hello', false],
  ['h[!a-z]llo', 'hXllo', true],
  ['h[!a-z]llo', 'hxllo', false],
  ['[]]', ']', true],
  ['[!]]', ']', false],
  ['[!]]', 'a', true],
  ['[a-]', '-', true],
  ['[a-]', 'a', true],
  ['[a\\]b]', ']', true],
  ['[a\\-c]', 'b', false],
  ['[a\\-c]', '-', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a\\?', 'a?', true],
  ['a\\?', 'ab', false],
  ['\\[x]', '[x]', true],
  ['a\\', 'a\\', true],
  ['a\\\\', 'a\\', true],
  ['café*', 'café au lait', true],
  ['caf?', 'café', false],
  ['caf??', 'café', true],
  ['*', '\u00ff\u0000', true],
];

describe('compileGlob', () => {
  test.each(table)('%j matches %j: %s', (pattern, key, expected) => {
    expect(compileGlob(pattern).matches(Buffer.from(key, 'utf8'))).toBe(expected);
  });

  test('matches raw bytes, including non-UTF-8 keys', () => {
    expect(compileGlob('a?c').matches(Buffer.of(0x61, 0xff, 0x63))).toBe(true);
    expect(compileGlob('a[!b]c').matches(Buffer.of(0x61, 0x00, 0x63))).toBe(true);
  });

  test('reports when it matches everything', () => {
    expect(compileGlob('').matchesAll).toBe(true);
    expect(compileGlob('***').matchesAll).toBe(true);
    expect(compileGlob('a*').matchesAll).toBe(false);
  });

  test('an unterminated class is INVALID_ARGUMENT with the pattern in the message', () => {
    for (const p of ['[abc', 'x[', '[!', '[a-']) {
      let err: unknown;
      try {
        compileGlob(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OmniError);
      expect((err as OmniError).code).toBe('INVALID_ARGUMENT');
      expect((err as OmniError).message).toContain('unterminated');
    }
  });

  test('a pathological pattern on a long key stays fast (no exponential backtracking)', () => {
    const m = compileGlob(`${'*a'.repeat(20)}b`);
    expect(m.matches(Buffer.alloc(4096, 'a'))).toBe(false);
  });
});
