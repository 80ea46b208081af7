import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseMemory } from '../../src/spec/index.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500], ['30s', 30_000], ['10m', 600_000], ['6h', 21_600_000], ['2d', 172_800_000],
    ['1h30m', 5_400_000], ['1m30s', 90_000], ['0', 0], [0, 0], ['1.5s', 1500], [' 5s ', 5000],
  ])('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['5x', '', '30', '10 m', 'm10', '1h 30m', '-5s', 'ms'])('rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(`'${input}' is not a duration (use e.g. 30s, 10m, 6h, 2d)`);
  });

  it('rejects bare non-zero numbers, which would be ambiguous', () => {
    expect(() => parseDuration(30)).toThrow("'30' is not a duration");
  });
});

describe('parseMemory', () => {
  it.each([
    ['512M', 512 * 1024 ** 2], ['2G', 2 * 1024 ** 3], ['1T', 1024 ** 4], ['64K', 65_536],
    ['2Gi', 2 * 1024 ** 3], ['2GB', 2 * 1024 ** 3], ['2GiB', 2 * 1024 ** 3], ['512m', 512 * 1024 ** 2],
    ['1000', 1000], [4096, 4096], ['0.5G', 512 * 1024 ** 2],
  ])('%s → %d bytes', (input, bytes) => {
    expect(parseMemory(input)).toBe(bytes);
  });

  it.each(['2X', '', 'G', '2 GG', '-1G', '5i'])('rejects %j', (input) => {
    expect(() => parseMemory(input)).toThrow(`'${input}' is not a memory size (use e.g. 512M, 2G, 64K)`);
  });
});

describe('formatDuration', () => {
  it.each([
    [450, '450ms'], [12_345, '12.3s'], [5000, '5s'], [5_400_000, '1h30m'], [90_000, '1m30s'],
    [172_800_000, '2d'], [93_784_000, '1d2h3m4s'], [0, '0ms'],
  ])('%d → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
