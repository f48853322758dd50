// Reading the kernel's block-device folders under /sys: where a device
// number's folder is, the disk a partition belongs to, and its atomic-write
// limits. A file sysfs does not have (an older kernel, a device without that
// feature) reads as absent, never as an error. Each read is a step
// (lib/steps.ts), so the same lookups serve blocking callers (openJournalSync)
// and async ones.
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BlockDeviceLimits } from './info';
import { perform, runAsync, type Procedure, type Step } from './steps';

function missingAs<T>(fallback: T, err: unknown): T {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
  throw err;
}

/** A step whose ENOENT is `fallback`. */
function unlessMissing<T>(fallback: T, sync: () => T, async: () => Promise<T>): Step<T> {
  return {
    sync: () => {
      try {
        return sync();
      } catch (err) {
        return missingAs(fallback, err);
      }
    },
    async: () => async().catch((err: unknown) => missingAs(fallback, err)),
  };
}

const readText = (file: string): Step<string | null> =>
  unlessMissing<string | null>(
    null,
    () => fs.readFileSync(file, 'utf8').trim(),
    async () => (await fsp.readFile(file, 'utf8')).trim(),
  );

const exists = (file: string): Step<boolean> => ({
  sync: () => fs.existsSync(file),
  async: () =>
    fsp.access(file).then(
      () => true,
      () => false,
    ),
});

/** A sysfs file's text, trimmed; null where it does not exist. */
export function readSysfs(file: string): Promise<string | null> {
  return readText(file).async();
}

/** A sysfs folder's entries, sorted; none where it does not exist. */
export function sysfsEntries(dir: string): Promise<string[]> {
  return unlessMissing<string[]>(
    [],
    () => fs.readdirSync(dir).sort(),
    async () => (await fsp.readdir(dir)).sort(),
  ).async();
}

export const sysfsHas = (file: string): Promise<boolean> => exists(file).async();

function* blockDirOf(devMajor: number, devMinor: number): Procedure<string | null> {
  if (devMajor === 0) return null;
  const link = `/sys/dev/block/${devMajor}:${devMinor}`;
  return yield* perform(
    unlessMissing<string | null>(
      null,
      () => fs.realpathSync(link),
      () => fsp.realpath(link),
    ),
  );
}

/** /sys/dev/block/MAJ:MIN resolved, or null for an anonymous device (tmpfs, overlay). */
export function sysfsBlockDir(devMajor: number, devMinor: number): Promise<string | null> {
  return runAsync(blockDirOf(devMajor, devMinor));
}

function* diskOfDir(dir: string): Procedure<{ disk: string; isPartition: boolean }> {
  const isPartition = yield* perform(exists(path.join(dir, 'partition')));
  return { disk: isPartition ? path.dirname(dir) : dir, isPartition };
}

/** The whole disk's folder for a device folder: a partition has no queue/ of its own. */
export function diskOf(dir: string): Promise<{ disk: string; isPartition: boolean }> {
  return runAsync(diskOfDir(dir));
}

function* atomicLimitsOf(disk: string): Procedure<Omit<BlockDeviceLimits, 'device'>> {
  const [unitMinBytes, unitMaxBytes, maxBytes, boundaryBytes] = [0, 0, 0, 0];
  const limits = { unitMinBytes, unitMaxBytes, maxBytes, boundaryBytes };
  const names = { unitMinBytes: 'unit_min', unitMaxBytes: 'unit_max', maxBytes: 'max', boundaryBytes: 'boundary' };
  for (const key of Object.keys(names) as (keyof typeof names)[]) {
    const text = yield* perform(readText(path.join(disk, 'queue', `atomic_write_${names[key]}_bytes`)));
    limits[key] = Number(text ?? 0);
  }
  return limits;
}

/** The atomic_write_*_bytes limits in a disk's queue/ folder; 0 where the kernel (before 6.11) has none. */
export function queueAtomicLimits(disk: string): Promise<Omit<BlockDeviceLimits, 'device'>> {
  return runAsync(atomicLimitsOf(disk));
}

/** The limits of the disk that holds device MAJ:MIN; null where there is none. */
export function* deviceLimitsOf(devMajor: number, devMinor: number): Procedure<BlockDeviceLimits | null> {
  const dir = yield* blockDirOf(devMajor, devMinor);
  if (dir === null) return null;
  const { disk } = yield* diskOfDir(dir);
  return { device: path.basename(disk), ...(yield* atomicLimitsOf(disk)) };
}
