// `untorn check PATH [--doublewrite FILE] [--json]`: verifies a page file.
// Exit 0 when every page is sound, 1 when any is corrupt (or the check fails).
import { formatBytes } from '../format';
import { checkPageFile, type CheckReport } from '../page-file/check';
import { parseCommandLine, UsageError } from './args';
import type { Command } from './command';

const USAGE = `usage: untorn check PATH [--doublewrite FILE] [--json]

Verifies the page file PATH: every page's checksum, page number and file id,
and what opening it would recover from its doublewrite file (pages restored
from a complete last batch count as sound; they are not written here). Takes
a shared lock: a file open for writing elsewhere is refused. Exit status 0
when every page is sound, 1 when any page is corrupt or the check fails.

  --doublewrite FILE   the doublewrite file (default PATH.dblwr)
  --json               print the report as one JSON document`;

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** The human form of a check report. */
export function formatCheckReport(r: CheckReport): string {
  const lines = [
    `${r.path}: ${r.sound ? 'sound' : 'CORRUPT'}: ${plural(r.pages, 'page')} of ${formatBytes(r.pageSize)}: ` +
      `${r.ok.toLocaleString('en-US')} ok, ${r.empty.toLocaleString('en-US')} never written, ${r.corrupt.length.toLocaleString('en-US')} corrupt`,
    ...r.corrupt.map(({ page, reason }) => `  page ${page}: ${reason}`),
    `doublewrite file: ${r.recovery.batchesDiscarded > 0 ? 'an incomplete last batch, which open ignores' : `${plural(r.recovery.pagesChecked, 'page')} in the last batch`}` +
      (r.recovery.pagesRestored > 0 ? `; open would restore ${plural(r.recovery.pagesRestored, 'page')} from it` : ''),
  ];
  return `${lines.join('\n')}\n`;
}

export const checkCommand: Command = {
  name: 'check',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommandLine(args, {
      doublewrite: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) {
      throw new UsageError(
        positionals.length === 0
          ? 'missing PATH'
          : `one PATH expected, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    const report = await checkPageFile(positionals[0], values.doublewrite as string | undefined);
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
    return report.sound ? 0 : 1;
  },
};
