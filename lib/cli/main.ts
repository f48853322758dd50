#!/usr/bin/env node
// The `untorn` command: dispatches to `probe`, `bench` or `check`, and turns every
// failure into one line on stderr and an exit code (1 run, 2 usage).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { benchCommand } from './bench-command';
import { checkCommand } from './check-command';
import { probeCommand } from './probe-command';
import { UsageError } from './args';
import type { Command } from './command';
import { Interrupted } from './interrupt';

const COMMANDS: Command[] = [probeCommand, benchCommand, checkCommand];

const USAGE = `usage: untorn <command> [options]

commands:
${COMMANDS.map((c) => `  ${c.usage.split('\n')[0].replace(/^usage: /, '')}`).join('\n')}

Run 'untorn <command> --help' for a command's options.
`;

/** The one line an error becomes: kernel and usage errors have good messages; others get their name. */
function describeError(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  if (err instanceof Error)
    return 'code' in err && typeof err.code === 'string' ? err.message : `${err.name}: ${err.message}`;
  return String(err);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? process.stderr : process.stdout).write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(
      `${(JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version}\n`,
    );
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command)
      throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(`${command.usage}\n`);
      return 0;
    }
    return await command.run(args);
  } catch (err) {
    const prefix = command ? `untorn ${command.name}` : 'untorn';
    if (err instanceof Interrupted) {
      process.stderr.write(`${prefix}: ${err.message}; temporary files removed\n`);
      return 130;
    }
    process.stderr.write(`${prefix}: ${describeError(err)}\n`);
    if (err instanceof UsageError) {
      process.stderr.write(`Run '${prefix} --help' for usage.\n`);
      return 2;
    }
    return 1;
  }
}

if (require.main === module) {
  // `untorn probe --json | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
