// The statx side of a probe: what kind of file the target is, and the statx
// a new file gets in a directory target.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { rawStat, toAtomicWriteInfo } from '../capabilities';
import { ProbeError } from '../errors';
import type { AtomicWriteInfo } from '../info';
import type { TargetKind } from './types';

const S_IFMT = 0o170000;
const KINDS: Record<number, TargetKind> = { 0o100000: 'file', 0o040000: 'directory', 0o060000: 'block-device' };
const OTHER_TYPES: Record<number, string> = {
  0o010000: 'a FIFO',
  0o140000: 'a socket',
  0o020000: 'a character device',
};

/** What the target is, from its statx mode, or a ProbeError for what probe cannot report on. */
export function targetKind(target: string, mode: number): TargetKind {
  const kind = KINDS[mode & S_IFMT];
  if (kind !== undefined) return kind;
  const what = OTHER_TYPES[mode & S_IFMT] ?? 'not a regular file, directory or block device';
  throw new ProbeError(
    'ERR_PROBE_FILE_TYPE',
    `${target} is ${what}; probe a regular file, a directory or a block device`,
  );
}

/**
 * statx of a file created in `dir` for the purpose and removed again: a
 * directory's own statx has no atomic limits (XFS and ext4 give them for
 * regular files only), and a new file inherits the directory's settings.
 * Returns the errno code instead when no file can be created there.
 */
export async function statNewFile(dir: string): Promise<AtomicWriteInfo | string> {
  const file = path.join(dir, `.untorn-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await (await fsp.open(file, 'wx', 0o600)).close();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
  }
  try {
    return toAtomicWriteInfo(await rawStat(file));
  } finally {
    await fsp.rm(file, { force: true });
  }
}
