// A bench's settings: defaults, and the one place they are checked, before
// anything is created on disk. Errors are Node's argument errors.
import { invalidArgType, invalidArgValue, outOfRange } from '../errors';
import { JOURNAL_AREA_BYTES } from '../journal/journal';
import { GROWTH_BYTES } from '../page-file/page-file';
import {
  DEFAULT_PAGE_SIZE,
  MAX_BATCH_PAGES,
  PAGE_FILE_PAGE_SIZES,
  PAGE_SIZE_RANGE,
  validateInteger,
  validateOneOf,
  validatePageSize,
} from '../validate';
import { DEFAULT_STRATEGIES, STRATEGIES, type BenchConfig, type Pattern, type Strategy, type SyncMode } from './types';

export interface BenchProgress {
  phase: 'prepare' | 'warmup' | 'measure' | 'verify';
  /** 1-based measured round (0 outside 'measure'). */
  round: number;
  rounds: number;
  strategy: Strategy | null;
  /** How far the current phase is, 0..1. */
  fraction: number;
}

export interface BenchOptions {
  /** Directory the bench files go in (a temporary subdirectory, removed afterwards). Default: the current directory. */
  dir?: string;
  pageSize?: number;
  batch?: number;
  depth?: number;
  sync?: SyncMode;
  pattern?: Pattern;
  pages?: number;
  /**
   * Default: atomic, doublewrite, unprotected; atomic is left out (with a note) where the file cannot write
   * atomically at all. 'pagefile' adds a PageFile with the strategy it picks (pageSize 4096..65536, batch <= 1024),
   * 'journal' a file written through a Journal with the strategy it picks (pageSize 4096..65536).
   */
  strategies?: Strategy[];
  rounds?: number;
  /** Measured page writes per strategy; exclusive with duration. */
  writes?: number;
  /** Measured seconds per strategy (default 3); exclusive with writes. */
  duration?: number;
  signal?: AbortSignal;
  onProgress?: (progress: BenchProgress) => void;
}

export const DEFAULTS = {
  pageSize: DEFAULT_PAGE_SIZE,
  batch: 64,
  depth: 1,
  sync: 'batch' as SyncMode,
  pattern: 'random' as Pattern,
  pages: 4096,
  rounds: 5,
  duration: 3,
};

export const LIMITS = {
  pageSize: PAGE_SIZE_RANGE,
  batch: [1, 4096],
  depth: [1, 1024],
  rounds: [1, 100],
  duration: [0.01, 24 * 3600],
} as const;

/** `value`, checked as an integer within `range`, or `fallback` where it is not given. */
function integer(
  name: string,
  value: unknown,
  fallback: number,
  [min, max]: readonly [number, number] = [1, 2 ** 32 - 1],
): number {
  if (value === undefined) return fallback;
  validateInteger(name, value, min, max);
  return value;
}

/** `value`, checked as one of `choices`, or `fallback` where it is not given. */
function choice<T extends string>(name: string, value: unknown, fallback: T, choices: readonly T[]): T {
  if (value === undefined) return fallback;
  validateOneOf(name, value, choices);
  return value;
}

/** The settings a run uses, all checked; `explicitStrategies` says whether the caller chose them. */
export function resolveBenchConfig(options: BenchOptions): BenchConfig & { explicitStrategies: boolean } {
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  const pageSize = options.pageSize === undefined ? DEFAULTS.pageSize : options.pageSize;
  validatePageSize(pageSize);
  const batch = integer('batch', options.batch, DEFAULTS.batch, LIMITS.batch);
  const depth = integer('depth', options.depth, DEFAULTS.depth, LIMITS.depth);
  const pages = integer('pages', options.pages, DEFAULTS.pages, [batch, Math.floor(2 ** 32 / 2) - 1]);
  const rounds = integer('rounds', options.rounds, DEFAULTS.rounds, LIMITS.rounds);
  if (options.writes !== undefined && options.duration !== undefined) {
    throw invalidArgValue(
      'options',
      { writes: options.writes, duration: options.duration },
      'may set writes or duration, not both',
    );
  }
  const writes = options.writes === undefined ? null : integer('writes', options.writes, 0, [1, 2 ** 31]);
  let duration: number | null = null;
  if (writes === null) {
    duration = options.duration ?? DEFAULTS.duration;
    if (typeof duration !== 'number') throw invalidArgType('duration', 'of type number', duration);
    const [min, max] = LIMITS.duration;
    if (!(duration >= min && duration <= max)) throw outOfRange('duration', `seconds >= ${min} && <= ${max}`, duration);
  }
  let strategies = [...DEFAULT_STRATEGIES];
  if (options.strategies !== undefined) {
    const list: unknown = options.strategies;
    if (!Array.isArray(list) || list.length === 0)
      throw invalidArgValue('strategies', list, `must be a non-empty array of ${STRATEGIES.join(', ')}`);
    strategies = list.map((s) => choice('strategies', s, 'atomic', STRATEGIES));
    if (new Set(strategies).size !== strategies.length)
      throw invalidArgValue('strategies', list, 'names a strategy twice');
  }
  if (strategies.includes('pagefile')) {
    const [min, max] = PAGE_FILE_PAGE_SIZES;
    if (pageSize < min || pageSize > max)
      throw outOfRange('pageSize', `a power of two >= ${min} && <= ${max} for the pagefile strategy`, pageSize);
    if (batch > MAX_BATCH_PAGES) throw outOfRange('batch', `<= ${MAX_BATCH_PAGES} for the pagefile strategy`, batch);
  }
  if (strategies.includes('journal')) {
    const [min, max] = PAGE_FILE_PAGE_SIZES;
    if (pageSize < min || pageSize > max)
      throw outOfRange('pageSize', `a power of two >= ${min} && <= ${max} for the journal strategy`, pageSize);
  }
  return {
    pageSize,
    batch,
    depth,
    pages,
    rounds,
    writes,
    duration,
    strategies,
    sync: choice('sync', options.sync, DEFAULTS.sync, ['batch', 'page']),
    pattern: choice('pattern', options.pattern, DEFAULTS.pattern, ['random', 'sequential']),
    explicitStrategies: options.strategies !== undefined,
  };
}

/** Disk space a run takes: a file per strategy, the doublewrite area, and slack for copy-on-write. */
export function bytesNeeded(config: BenchConfig): number {
  const files = config.strategies.length * config.pages * config.pageSize;
  const doublewrite = config.strategies.includes('doublewrite') ? config.batch * config.pageSize : 0;
  // A page file has its header pages, a chunk of growth, and its doublewrite file.
  const pageFile = config.strategies.includes('pagefile') ? GROWTH_BYTES + (config.batch + 4) * config.pageSize : 0;
  // A journal has its header page and its batch area.
  const journal = config.strategies.includes('journal') ? JOURNAL_AREA_BYTES + config.pageSize : 0;
  // Copy-on-write atomic writes need room for a batch of new blocks, and the
  // filesystem keeps some space for itself.
  return files + doublewrite + pageFile + journal + config.batch * config.pageSize + 16 * 1024 * 1024;
}
