// `untorn bench [DIR] [--scratch] [options] [--json] [--svg FILE]`
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { renderChart } from '../bench/chart';
import { bench } from '../bench/engine';
import { formatBenchReport } from '../bench/format';
import { bytesNeeded, DEFAULTS, resolveBenchConfig, type BenchOptions } from '../bench/options';
import { scratchSize, withScratchXfs } from '../bench/scratch';
import { DEFAULT_STRATEGIES, STRATEGIES, type BenchConfig } from '../bench/types';
import {
  asUsageError,
  parseChoice,
  parseCommandLine,
  parseInteger,
  parseList,
  parseSeconds,
  parseSize,
  UsageError,
} from './args';
import { withInterrupt } from './interrupt';
import type { Command } from './command';
import { progressLine } from './progress';

const USAGE = `usage: untorn bench [DIR] [--scratch] [options] [--json] [--svg FILE]

Atomic 16 KB page writes against double-write and unprotected writes, on
DIR's filesystem (default: the current directory). Files go in a temporary
subdirectory of DIR and are removed afterwards.

  --scratch            bench a temporary XFS filesystem in a loop-mounted image
                       under $TMPDIR (needs root and mkfs.xfs); removed afterwards
  --page-size SIZE     page size in bytes, a power of two (default ${DEFAULTS.pageSize})
  --batch N            pages per durability point (default ${DEFAULTS.batch})
  --depth N            writes in flight (default ${DEFAULTS.depth})
  --sync batch|page    one fdatasync per batch, or RWF_DSYNC on every write (default ${DEFAULTS.sync})
  --pattern random|sequential   page order (default ${DEFAULTS.pattern})
  --pages N            working set: pages per file (default ${DEFAULTS.pages})
  --duration SECONDS   measured time per strategy (default ${DEFAULTS.duration})
  --writes N           measured page writes per strategy, instead of --duration
  --rounds N           interleaved rounds the measurement is split into (default ${DEFAULTS.rounds})
  --strategies LIST    comma-separated: ${STRATEGIES.join(',')} (default:
                       ${DEFAULT_STRATEGIES.join(',')}); pagefile writes through a page file
                       (openPageFile), journal through a journal (openJournal, a
                       commit per batch; depth 1: the blocking calls), each with
                       the strategy it picks for the stack
  --json               print the report as one JSON document
  --svg FILE           also write a chart of the results to FILE`;

const OPTIONS = {
  scratch: { type: 'boolean' },
  'page-size': { type: 'string' },
  batch: { type: 'string' },
  depth: { type: 'string' },
  sync: { type: 'string' },
  pattern: { type: 'string' },
  pages: { type: 'string' },
  duration: { type: 'string' },
  writes: { type: 'string' },
  rounds: { type: 'string' },
  strategies: { type: 'string' },
  json: { type: 'boolean' },
  svg: { type: 'string' },
} as const;

/** The options as the engine takes them, and the settings they come to; every value checked before anything is created. */
function benchOptions(values: Record<string, string | boolean | undefined>): {
  options: BenchOptions;
  config: BenchConfig;
} {
  const text = (name: string) => values[name] as string | undefined;
  const maybe = <T>(name: string, parse: (name: string, text: string) => T) =>
    text(name) === undefined ? undefined : parse(name, text(name)!);
  const options: BenchOptions = {
    pageSize: maybe('page-size', parseSize),
    batch: maybe('batch', parseInteger),
    depth: maybe('depth', parseInteger),
    sync: maybe('sync', (n, t) => parseChoice(n, t, ['batch', 'page'] as const)),
    pattern: maybe('pattern', (n, t) => parseChoice(n, t, ['random', 'sequential'] as const)),
    pages: maybe('pages', parseInteger),
    duration: maybe('duration', parseSeconds),
    writes: maybe('writes', parseInteger),
    rounds: maybe('rounds', parseInteger),
    strategies: maybe('strategies', (n, t) => parseList(n, t, STRATEGIES)),
  };
  if (options.duration !== undefined && options.writes !== undefined)
    throw new UsageError('give --duration or --writes, not both');
  try {
    return { options, config: resolveBenchConfig(options) };
  } catch (err) {
    throw asUsageError(err);
  }
}

/** Fails before the run, not after it, when the chart cannot be written. */
async function checkSvgTarget(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const stat = await fsp.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) throw new UsageError(`--svg ${file}: directory ${dir} does not exist`);
}

export const benchCommand: Command = {
  name: 'bench',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, OPTIONS);
    if (positionals.length > 1)
      throw new UsageError(`one DIR at most, got ${positionals.length}: ${positionals.join(' ')}`);
    const scratch = values.scratch === true;
    if (scratch && positionals.length > 0) throw new UsageError('give DIR or --scratch, not both');
    const { options, config } = benchOptions(values);
    // Where the thread pool runs the writes (no io_uring here), it must be big
    // enough for the writes in flight. libuv sizes it once, when it is first
    // used: before any async call of this command (the --svg check is one).
    if (!process.env.UV_THREADPOOL_SIZE && config.depth > 4) process.env.UV_THREADPOOL_SIZE = String(config.depth);
    const svg = values.svg as string | undefined;
    if (svg !== undefined) await checkSvgTarget(svg);

    const progress = progressLine(process.stderr);
    const report = await withInterrupt(async (signal) => {
      const run = (dir: string) => bench({ ...options, dir, signal, onProgress: progress?.update });
      try {
        if (!scratch) return await run(positionals[0] ?? '.');
        return await withScratchXfs(scratchSize(bytesNeeded(config)), signal, run);
      } finally {
        progress?.clear();
      }
    });
    if (svg !== undefined) await fsp.writeFile(svg, renderChart(report));
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatBenchReport(report));
    return 0;
  },
};
