// `untorn probe PATH [--page-size SIZE] [--json] [--try]`: the probe report for one path, as
// JSON (one document on stdout) or as the aligned human form.
import { formatProbeReport } from '../probe/format';
import { probe } from '../probe/probe';
import { DEFAULT_PAGE_SIZE, validatePageSize } from '../validate';
import { asUsageError, parseCommandLine, parseSize, UsageError } from './args';
import { withInterrupt } from './interrupt';
import type { Command } from './command';

const USAGE = `usage: untorn probe PATH [--page-size SIZE] [--json] [--try]

What the whole storage stack offers PATH for atomic (untorn) writes, and why:
kernel, filesystem and mount options, statx limits, the block devices below,
the path atomic writes take (hardware, software copy-on-write or none), a
verdict and advice. PATH is a regular file, a directory (the report is about
a file created there) or a block device.

  --page-size SIZE     the page size the verdict is about, in bytes, a power of
                       two (default ${DEFAULT_PAGE_SIZE})
  --json               print the report as one JSON document
  --try                also attempt real atomic writes on a temporary file in
                       PATH's directory (in PATH, for a directory): every power
                       of two from unitMin to unitMax (up to 64 MiB) and the
                       classic invalid cases; reports what the kernel accepted
                       and the file is always removed. Not for a block device`;

export const probeCommand: Command = {
  name: 'probe',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommandLine(args, {
      'page-size': { type: 'string' },
      json: { type: 'boolean' },
      try: { type: 'boolean' },
    });
    if (positionals.length !== 1) {
      throw new UsageError(
        positionals.length === 0
          ? 'missing PATH'
          : `one PATH expected, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    const text = values['page-size'] as string | undefined;
    const pageSize = text === undefined ? DEFAULT_PAGE_SIZE : parseSize('page-size', text);
    try {
      validatePageSize(pageSize);
    } catch (err) {
      throw asUsageError(err);
    }
    const report = await withInterrupt((signal) =>
      probe(positionals[0], { try: values.try === true, pageSize, signal }),
    );
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatProbeReport(report));
    return 0;
  },
};
