// The CLI's argument parsing (lib/cli/args.ts).
import { describe, expect, it } from 'vitest';
import {
  parseChoice,
  parseCommandLine,
  parseInteger,
  parseList,
  parseSeconds,
  parseSize,
  UsageError,
} from '../lib/cli/args';
import { thrown } from './helpers/caught';

const MiB = 1024 * 1024;

describe('parseSize', () => {
  it('takes bytes and binary units, in any case', () => {
    expect(parseSize('page-size', '16384')).toBe(16384);
    expect(parseSize('page-size', '16k')).toBe(16384);
    expect(parseSize('page-size', '16K')).toBe(16384);
    expect(parseSize('page-size', '16KiB')).toBe(16384);
    expect(parseSize('page-size', '16kib')).toBe(16384);
    expect(parseSize('page-size', '16KB')).toBe(16384);
    expect(parseSize('page-size', '1m')).toBe(MiB);
    expect(parseSize('page-size', '1MiB')).toBe(MiB);
    expect(parseSize('page-size', '2g')).toBe(2 * 1024 * MiB);
    expect(parseSize('page-size', ' 4k ')).toBe(4096);
    expect(parseSize('page-size', '4 k')).toBe(4096);
  });

  it('refuses zero, negatives, fractions and words with a UsageError', () => {
    for (const bad of ['0', '0k', 'abc', '-1', '-16k', '1.5k', '', 'k', '16x', '16kk', '1e3', '99999999999g']) {
      const err = thrown(() => parseSize('page-size', bad));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.name).toBe('UsageError');
      expect(err.message).toBe(`--page-size must be a positive size in bytes (e.g. 16384 or 16k), not '${bad}'`);
    }
  });
});

describe('parseInteger', () => {
  it('takes integers within the range', () => {
    expect(parseInteger('batch', '64')).toBe(64);
    expect(parseInteger('batch', '1')).toBe(1);
    expect(parseInteger('batch', ' 7 ')).toBe(7);
    expect(parseInteger('batch', '007')).toBe(7);
    expect(parseInteger('batch', '4096', 1, 4096)).toBe(4096);
    expect(parseInteger('depth', '0', 0, 10)).toBe(0);
  });

  it('refuses what is not an integer in the range', () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '', '1e3', '0x10', '9007199254740993']) {
      const err = thrown(() => parseInteger('batch', bad));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toBe(`--batch must be an integer at least 1, not '${bad}'`);
    }
    expect(thrown(() => parseInteger('batch', '4097', 1, 4096)).message).toBe(
      "--batch must be an integer between 1 and 4096, not '4097'",
    );
    expect(thrown(() => parseInteger('rounds', '2', 3, 100)).message).toBe(
      "--rounds must be an integer between 3 and 100, not '2'",
    );
  });
});

describe('parseSeconds', () => {
  it('takes positive seconds, with fractions and an optional s', () => {
    expect(parseSeconds('duration', '3')).toBe(3);
    expect(parseSeconds('duration', '0.5')).toBe(0.5);
    expect(parseSeconds('duration', '2s')).toBe(2);
    expect(parseSeconds('duration', '1.25s')).toBe(1.25);
    expect(parseSeconds('duration', ' 10 ')).toBe(10);
  });

  it('refuses zero, negatives and words', () => {
    for (const bad of ['0', '0.0', '0s', '-1', 'abc', '', '.5', '1e3', '3m', 's', '1.']) {
      const err = thrown(() => parseSeconds('duration', bad));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toBe(`--duration must be a positive number of seconds, not '${bad}'`);
    }
  });
});

describe('parseChoice / parseList', () => {
  const strategies = ['atomic', 'doublewrite', 'unprotected'] as const;

  it('takes one word of the set', () => {
    expect(parseChoice('sync', 'page', ['batch', 'page'])).toBe('page');
    const err = thrown(() => parseChoice('sync', 'Page', ['batch', 'page']));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe("--sync must be one of batch, page, not 'Page'");
  });

  it('takes a comma-separated list in the order given', () => {
    expect(parseList('strategies', 'atomic', strategies)).toEqual(['atomic']);
    expect(parseList('strategies', 'unprotected,atomic', strategies)).toEqual(['unprotected', 'atomic']);
    expect(parseList('strategies', ' atomic , doublewrite ,', strategies)).toEqual(['atomic', 'doublewrite']);
  });

  it('refuses an empty list, an unknown word and a repeated one', () => {
    for (const bad of ['', ',', ' , ']) {
      const err = thrown(() => parseList('strategies', bad, strategies));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toBe('--strategies needs at least one of atomic, doublewrite, unprotected');
    }
    const unknown = thrown(() => parseList('strategies', 'atomic,fast', strategies));
    expect(unknown).toBeInstanceOf(UsageError);
    expect(unknown.message).toBe("--strategies must be one of atomic, doublewrite, unprotected, not 'fast'");
    const twice = thrown(() => parseList('strategies', 'atomic,doublewrite,atomic', strategies));
    expect(twice).toBeInstanceOf(UsageError);
    expect(twice.message).toContain('twice');
  });
});

describe('parseCommandLine', () => {
  const options = {
    'page-size': { type: 'string' as const },
    json: { type: 'boolean' as const },
    help: { type: 'boolean' as const, short: 'h' },
  };

  it('reads options and positionals', () => {
    const { values, positionals } = parseCommandLine(['--page-size', '16k', '--json', '/mnt/x'], options);
    expect(values).toEqual({ 'page-size': '16k', json: true });
    expect(positionals).toEqual(['/mnt/x']);
    expect(parseCommandLine(['--page-size=4k', '-h'], options).values).toEqual({ 'page-size': '4k', help: true });
    expect(parseCommandLine([], options)).toEqual({ values: {}, positionals: [] });
  });

  it('makes an unknown option a UsageError in one line', () => {
    for (const args of [['--bogus'], ['/mnt/x', '--bogus'], ['-z']]) {
      const err = thrown(() => parseCommandLine(args, options));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.name).toBe('UsageError');
      expect(err.message).not.toContain('\n');
      expect(err.message).not.toContain('To specify a positional argument');
      expect(err.message).toMatch(/^Unknown option '(--bogus|-z)'$/);
    }
  });

  it('makes a missing or misplaced value a UsageError in one line', () => {
    for (const args of [['--page-size'], ['--json=yes']]) {
      const err = thrown(() => parseCommandLine(args, options));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).not.toContain('\n');
      expect(err.message.length).toBeGreaterThan(0);
    }
  });
});
