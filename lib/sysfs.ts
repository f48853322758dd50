// Reading the kernel's block-device folders under /sys: where a device
// number's folder is, the disk a partition belongs to, and its atomic-write
// limits. A file sysfs does not have (an older kernel, a device without that
// feature) reads as absent, never as an error.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BlockDeviceLimits } from './info';

function unlessMissing<T>(fallback: T) {
  return (err: NodeJS.ErrnoException): T => {
    if (err.code === 'ENOENT') return fallback;
    throw err;
  };
}

/** A sysfs file's text, trimmed; null where it does not exist. */
export function readSysfs(file: string): Promise<string | null> {
  return fsp.readFile(file, 'utf8').then((text) => text.trim(), unlessMissing(null));
}

/** A sysfs folder's entries, sorted; none where it does not exist. */
export function sysfsEntries(dir: string): Promise<string[]> {
  return fsp.readdir(dir).then((names) => names.sort(), unlessMissing([]));
}

export const sysfsHas = (file: string): Promise<boolean> =>
  fsp.access(file).then(
    () => true,
    () => false,
  );

/** /sys/dev/block/MAJ:MIN resolved, or null for an anonymous device (tmpfs, overlay). */
export async function sysfsBlockDir(devMajor: number, devMinor: number): Promise<string | null> {
  if (devMajor === 0) return null;
  return fsp.realpath(`/sys/dev/block/${devMajor}:${devMinor}`).catch(unlessMissing(null));
}

/** The whole disk's folder for a device folder: a partition has no queue/ of its own. */
export async function diskOf(dir: string): Promise<{ disk: string; isPartition: boolean }> {
  const isPartition = await sysfsHas(path.join(dir, 'partition'));
  return { disk: isPartition ? path.dirname(dir) : dir, isPartition };
}

/** The atomic_write_*_bytes limits in a disk's queue/ folder; 0 where the kernel (before 6.11) has none. */
export async function queueAtomicLimits(disk: string): Promise<Omit<BlockDeviceLimits, 'device'>> {
  const limit = async (name: string) =>
    Number((await readSysfs(path.join(disk, 'queue', `atomic_write_${name}_bytes`))) ?? 0);
  const [unitMinBytes, unitMaxBytes, maxBytes, boundaryBytes] = await Promise.all(
    ['unit_min', 'unit_max', 'max', 'boundary'].map(limit),
  );
  return { unitMinBytes, unitMaxBytes, maxBytes, boundaryBytes };
}
