// Command-line parsing shared by the commands: node:util's parseArgs (strict,
// so an unknown option is a usage error) and the value rules untorn's options use.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIntegerIn, isOneOf } from '../validate';

/** Bad usage: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** parseArgs that reports bad usage as a UsageError in one line. */
export function parseCommandLine(args: string[], options: Options): CommandLine {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true }) as CommandLine;
  } catch (err) {
    // parseArgs's messages end with a hint about '--' that is noise here.
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte size: 16384, 16k, 16K, 16KiB, 1m ... (binary units). */
export function parseSize(name: string, text: string): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  const value = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`--${name} must be a positive size in bytes (e.g. 16384 or 16k), not '${text}'`);
  }
  return value;
}

/** A positive integer within [min, max]. */
export function parseInteger(name: string, text: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || !isIntegerIn(value, min, max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, not '${text}'`);
  }
  return value;
}

/** A positive number of seconds (fractions allowed). */
export function parseSeconds(name: string, text: string): number {
  const value = /^\d+(\.\d+)?s?$/.test(text.trim()) ? parseFloat(text) : NaN;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`--${name} must be a positive number of seconds, not '${text}'`);
  }
  return value;
}

/** One of a fixed set of words. */
export function parseChoice<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if (!isOneOf(text, choices)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, not '${text}'`);
  }
  return text;
}

/** A comma-separated list of distinct words from a fixed set, in the order given. */
export function parseList<T extends string>(name: string, text: string, choices: readonly T[]): T[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`--${name} needs at least one of ${choices.join(', ')}`);
  const list = items.map((item) => parseChoice(name, item, choices));
  if (new Set(list).size !== list.length) throw new UsageError(`--${name} names a strategy twice: '${text}'`);
  return list;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * A library option error (Node's ERR_OUT_OF_RANGE and the like, which name
 * the option as the library does: "pageSize") as bad usage, naming the option
 * as typed: --page-size.
 */
export function asUsageError(err: unknown): UsageError {
  return new UsageError((err as Error).message.replace(/"(\w+)"|'(\w+)'/, (_, a, b) => `--${kebab(a ?? b)}`));
}
