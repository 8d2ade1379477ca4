import { InvalidArgumentError } from 'commander';
import { parseDuration, parsePositiveDuration, parseRunDuration } from '../src/parsers.js';

// One duration syntax for omnictl and bench:compare: a bare number is milliseconds, like --timeout.

test('durations take ms, s, m, h and d; a bare number is milliseconds', () => {
  expect(parseDuration('500')).toBe(500);
  expect(parseDuration('1500ms')).toBe(1500);
  expect(parseDuration('2.5s')).toBe(2500);
  expect(parseDuration('2m')).toBe(120_000);
  expect(parseDuration('0')).toBe(0);
  expect(() => parseDuration('fast')).toThrow(/expected a duration/);
  expect(() => parsePositiveDuration('0s')).toThrow(/greater than zero/);
});

test('a run duration needs its unit: --duration 5 is refused instead of running for 5 ms', () => {
  expect(parseRunDuration('5s')).toBe(5000);
  expect(parseRunDuration('1200ms')).toBe(1200);
  expect(() => parseRunDuration('5')).toThrow(InvalidArgumentError);
  expect(() => parseRunDuration('5')).toThrow('give a unit, e.g. 5s or 5ms.');
  expect(() => parseRunDuration('0s')).toThrow(/greater than zero/);
});
