// The human form of a bench report: the stack, one table of figures, one of
// ratios to unprotected, and the verdict.
import { formatBytes, formatCount, formatRange, formatRatio, table } from '../format';
import type { BenchReport, StrategyResult } from './types';

const dash = '-';
const ratio = (r: number | null) => (r === null ? dash : formatRatio(r));
const micros = (us: number) => formatCount(us);

/** Per-page counts below one read better as a share of pages: 0.03125 -> "1/32". */
function perPage(n: number): string {
  if (n > 0 && n < 1) {
    const every = 1 / n;
    if (Math.abs(every - Math.round(every)) < 0.01 * every) return `1/${Math.round(every)}`;
  }
  return formatCount(n);
}

function describeRun(report: BenchReport): string {
  const c = report.config;
  const amount = c.writes !== null ? `${c.writes} writes` : `${c.duration} s`;
  return (
    `${formatBytes(c.pageSize)} pages, ${c.pattern} over ${c.pages} pages (${formatBytes(c.pages * c.pageSize)} a file), ` +
    `batches of ${c.batch}, ${c.depth} in flight, sync per ${c.sync}; ${amount} per strategy in ${c.rounds} rounds`
  );
}

function figures(r: StrategyResult): string[] {
  return [
    r.pageFile
      ? `${r.strategy} (${r.pageFile.strategy})`
      : r.journal
        ? `${r.strategy} (${r.journal.strategy})`
        : r.strategy,
    String(r.depthReached),
    formatCount(r.pagesPerSec),
    `${formatCount(r.pagesPerSecRange.min)}..${formatCount(r.pagesPerSecRange.max)}`,
    formatCount(r.mibPerSec),
    micros(r.latencyUs.p50),
    micros(r.latencyUs.p99),
    micros(r.latencyUs.p999),
    micros(r.batchLatencyUs.p50),
    micros(r.batchLatencyUs.p99),
    r.deviceBytesPerPage === null ? dash : formatBytes(r.deviceBytesPerPage),
    perPage(r.flushesPerPage),
    r.deviceFlushesPerPage === null ? dash : perPage(r.deviceFlushesPerPage),
  ];
}

export function formatBenchReport(report: BenchReport): string {
  const { stack, results } = report;
  const { statx, blockDevice } = stack;
  const atomicLimits = statx.supported
    ? `${formatRange(statx.unitMin, statx.unitMax)}${statx.unitMaxOpt ? ` (hardware-optimised to ${formatBytes(statx.unitMaxOpt)})` : ''}`
    : 'unsupported';
  const device = blockDevice
    ? `${blockDevice.device}: ${blockDevice.unitMaxBytes > 0 ? `atomic ${formatRange(blockDevice.unitMinBytes, blockDevice.unitMaxBytes)}` : 'no atomic writes'}`
    : 'none';
  const lines = [
    `untorn bench: ${describeRun(report)}`,
    '',
    table([
      ['kernel', stack.kernel],
      ['filesystem', `${stack.filesystem} on ${stack.mountPoint || '?'} (${stack.mountOptions || '?'})`],
      ['statx', `atomic ${atomicLimits}; DIO alignment ${statx.dioMemAlign}/${statx.dioOffsetAlign}`],
      ['block device', device],
      ['atomic path', `${stack.atomicPath} for ${formatBytes(report.config.pageSize)} pages`],
      [
        'engine',
        report.config.depth === 1 ? 'synchronous calls (depth 1)' : `${report.engine.name}: ${report.engine.reason}`,
      ],
    ]),
    '',
    table([
      [
        'strategy',
        'in flight',
        'pages/s',
        'rounds',
        'MiB/s',
        'p50 µs',
        'p99 µs',
        'p99.9 µs',
        'batch p50 µs',
        'batch p99 µs',
        'device/page',
        'syncs/page',
        'dev flushes/page',
      ],
      ...results.map(figures),
    ]),
  ];
  const compared = results.filter((r) => r.vsUnprotected && r.strategy !== 'unprotected');
  if (compared.length > 0) {
    lines.push(
      '',
      table([
        [
          'vs unprotected',
          'pages/s',
          'p50',
          'p99',
          'p99.9',
          'batch p50',
          'batch p99',
          'device/page',
          'syncs/page',
          'dev flushes/page',
        ],
        ...compared.map((r) => {
          const v = r.vsUnprotected!;
          return [
            r.strategy,
            ratio(v.pagesPerSec),
            ratio(v.latencyP50),
            ratio(v.latencyP99),
            ratio(v.latencyP999),
            ratio(v.batchLatencyP50),
            ratio(v.batchLatencyP99),
            ratio(v.deviceBytesPerPage),
            ratio(v.flushesPerPage),
            ratio(v.deviceFlushesPerPage),
          ];
        }),
      ]),
    );
  }
  lines.push('', `verdict: ${report.verdict}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
