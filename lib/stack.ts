// The storage stack under a path, as `untorn probe` and `untorn bench` report
// it: kernel, the mount that holds the path, and which path an atomic write of
// a given size takes there (device hardware, XFS's software copy-on-write, or none).
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import type { BlockDeviceLimits } from './info';
import type { AtomicWriteInfo } from './info';
import { perform, runAsync, type Procedure } from './steps';

export type AtomicPath = 'hardware' | 'software' | 'none';

/** One line of /proc/self/mountinfo, the mount that holds a path. */
export interface Mount {
  type: string;
  mountPoint: string;
  /** Per-mount options, then the filesystem's own (super) options. */
  options: string;
  /** What was mounted, e.g. /dev/loop3 or tmpfs. */
  source: string;
  /** The filesystem's device number; a block device's when the mount has one. */
  devMajor: number;
  devMinor: number;
  /** statfs f_bsize. */
  blockSize: number;
}

/** The running kernel's release, e.g. "6.18.0-1-amd64". */
export function kernelRelease(): string {
  return os.release();
}

/** [major, minor] of a kernel release string; [0, 0] when it cannot be read. */
export function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const [a, b] = kernelVersion(release);
  return a > major || (a === major && b >= minor);
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** One line of /proc/self/mountinfo, as proc(5) describes it (fields untorn uses). */
export interface MountLine {
  devMajor: number;
  devMinor: number;
  mountPoint: string;
  mountOptions: string;
  type: string;
  source: string;
  superOptions: string;
}

/** Parses /proc/self/mountinfo (proc(5)); lines it cannot read are skipped. */
export function parseMountInfo(text: string): MountLine[] {
  const mounts: MountLine[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    const [major, minor] = fields[2].split(':').map(Number);
    mounts.push({
      devMajor: major,
      devMinor: minor,
      mountPoint: unescapeMountField(fields[4]),
      mountOptions: fields[5],
      type: fields[dash + 1],
      source: unescapeMountField(fields[dash + 2]),
      superOptions: fields[dash + 3],
    });
  }
  return mounts;
}

/** This process's mounts. */
export async function readMountInfo(): Promise<MountLine[]> {
  return parseMountInfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
}

function isUnder(file: string, mountPoint: string): boolean {
  return mountPoint === '/' || file === mountPoint || file.startsWith(`${mountPoint}/`);
}

/**
 * The mount that holds `file` (an existing path): the last-mounted entry with
 * the file's device number whose mount point contains it, so bind mounts and
 * over-mounts resolve as the kernel resolves them. null if none matches.
 */
export function* mountOf(file: string, devMajor: number, devMinor: number): Procedure<Mount | null> {
  const real = yield* perform({ sync: () => fs.realpathSync(file), async: () => fsp.realpath(file) });
  const text = yield* perform({
    sync: () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
    async: () => fsp.readFile('/proc/self/mountinfo', 'utf8'),
  });
  const candidates = parseMountInfo(text).filter((m) => isUnder(real, m.mountPoint));
  const byDevice = candidates.filter((m) => m.devMajor === devMajor && m.devMinor === devMinor);
  // Longest mount point wins; among equals, the later (upper) mount.
  const pick = (list: MountLine[]) =>
    list.reduce<MountLine | null>(
      (best, m) => (!best || m.mountPoint.length >= best.mountPoint.length ? m : best),
      null,
    );
  const line = pick(byDevice) ?? pick(candidates);
  if (!line) return null;
  const { bsize } = yield* perform({ sync: () => fs.statfsSync(real), async: () => fsp.statfs(real) });
  // Both lists start with rw/ro; say each option once.
  const options = [...new Set([...line.mountOptions.split(','), ...line.superOptions.split(',')])].join(',');
  return {
    type: line.type,
    mountPoint: line.mountPoint,
    options,
    source: line.source,
    devMajor: line.devMajor,
    devMinor: line.devMinor,
    blockSize: bsize,
  };
}

export function findMount(file: string, devMajor: number, devMinor: number): Promise<Mount | null> {
  return runAsync(mountOf(file, devMajor, devMinor));
}

/** What an atomic write can go through on a file: sizes in bytes, 0 = not at all. */
export interface AtomicPaths {
  /** Smallest atomic write of any path (statx unitMin). */
  unitMin: number;
  /** Largest size the device writes atomically itself (NVMe AWUPF, SCSI WRITE ATOMIC). */
  hardwareMax: number;
  /** Smallest size the hardware path takes (0 when there is none). */
  hardwareMin: number;
  /** Largest size XFS's copy-on-write fallback writes atomically (0 elsewhere). */
  softwareMax: number;
}

/**
 * Which sizes take which path. statx gives the file's whole range
 * [unitMin, unitMax]; the device's sysfs limits (and, since 6.16,
 * unitMaxOpt) say which part of it the hardware does. XFS does the rest by
 * copy-on-write; other filesystems (ext4, a raw block device) have no
 * software path, so statx's range is the hardware's.
 */
export function atomicPaths(
  fsType: string | null,
  info: AtomicWriteInfo,
  device: BlockDeviceLimits | null,
): AtomicPaths {
  const { unitMin } = info;
  if (!info.supported) return { unitMin, hardwareMin: 0, hardwareMax: 0, softwareMax: 0 };
  if (fsType !== 'xfs') return { unitMin, hardwareMin: unitMin, hardwareMax: info.unitMax, softwareMax: 0 };
  const deviceMax = device && device.unitMaxBytes >= info.unitMin ? device.unitMaxBytes : 0;
  const hardwareMax = Math.min(info.unitMax, info.unitMaxOpt > 0 ? info.unitMaxOpt : deviceMax);
  return {
    unitMin,
    hardwareMin: hardwareMax > 0 ? Math.max(info.unitMin, device?.unitMinBytes ?? 0) : 0,
    hardwareMax,
    softwareMax: info.unitMax,
  };
}

/** The path an atomic write of `length` bytes takes ('none' if it cannot be atomic). */
export function atomicPathFor(paths: AtomicPaths, length: number): AtomicPath {
  if (paths.hardwareMax > 0 && length >= paths.hardwareMin && length <= paths.hardwareMax) return 'hardware';
  if (paths.softwareMax > 0 && length >= paths.unitMin && length <= paths.softwareMax) return 'software';
  return 'none';
}
