// `untorn bench --scratch`: a temporary XFS filesystem in a loop-mounted,
// sparse image file under os.tmpdir() (TMPDIR=/dev/shm makes it RAM-backed),
// so that anyone with root sees real atomic writes without an XFS disk. It is
// unmounted and deleted however the work ends.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BenchError } from '../errors';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const STEP = 256 * 1024 ** 2;

// Debian keeps mkfs.xfs in /usr/sbin, which a non-login root shell may lack in PATH.
export async function findProgram(name: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (
      await fsp.access(candidate, fsp.constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return null;
}

/** The image size for files of `bytes`: room to spare, at least 1 GiB (XFS's atomic unitMax grows with the filesystem). */
export function scratchSize(bytes: number): number {
  return Math.max(GiB, Math.ceil((bytes * 1.25 + 64 * 1024 ** 2) / STEP) * STEP);
}

function toolError(what: string, err: unknown): BenchError {
  const e = err as { stderr?: string; message: string };
  const detail = (e.stderr || e.message).trim().split('\n')[0];
  return new BenchError('ERR_SCRATCH', `--scratch could not ${what}: ${detail}`);
}

async function unmount(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await run('umount', [dir]);
      return;
    } catch (err) {
      // Busy for a moment after the last close: wait; in the end detach it lazily.
      if (attempt >= 10) {
        await run('umount', ['-l', dir]);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Runs `work` in a fresh XFS filesystem of `size` bytes, then unmounts and deletes it. */
export async function withScratchXfs<T>(
  size: number,
  signal: AbortSignal | undefined,
  work: (dir: string) => Promise<T>,
): Promise<T> {
  if (process.getuid?.() !== 0) {
    throw new BenchError(
      'ERR_SCRATCH',
      '--scratch needs root to mount a loop device; run it as root, or give a DIR on the filesystem to test',
    );
  }
  const mkfs = await findProgram('mkfs.xfs');
  if (!mkfs)
    throw new BenchError('ERR_SCRATCH', '--scratch needs mkfs.xfs: install xfsprogs (apt-get install xfsprogs)');
  signal?.throwIfAborted();
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'untorn-scratch-'));
  const image = path.join(root, 'xfs.img');
  const mountPoint = path.join(root, 'mnt');
  let mounted = false;
  try {
    await fsp.mkdir(mountPoint);
    await fsp.writeFile(image, '');
    await fsp.truncate(image, size);
    await run(mkfs, ['-q', '-f', image], { signal }).catch((err) => {
      throw signal?.aborted ? signal.reason : toolError('make an XFS filesystem', err);
    });
    await run('mount', ['-o', 'loop', image, mountPoint], { signal }).catch((err) => {
      throw signal?.aborted ? signal.reason : toolError('mount the XFS image', err);
    });
    mounted = true;
    return await work(mountPoint);
  } finally {
    if (mounted) await unmount(mountPoint);
    await fsp.rm(root, { recursive: true, force: true });
  }
}
