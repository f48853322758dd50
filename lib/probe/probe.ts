// `untorn probe` as a library function: what the whole storage stack under a
// path offers for atomic writes (kernel, mount, statx, block devices), which
// path they take, and a verdict with advice; with `try`, what the kernel
// actually accepts (see ./trial).
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { blockDeviceLimits, rawStat, toAtomicWriteInfo, type BlockDeviceLimits } from '../capabilities';
import { ProbeError } from '../errors';
import { formatBytes, formatRange } from '../format';
import type { AtomicWriteInfo } from '../info';
import {
  atomicPathFor, atomicPaths, bestAtomicPath, findMount, kernelAtLeast, kernelRelease, readMountInfo,
  type AtomicPath, type AtomicPaths,
} from '../stack';
import { diskOf, queueAtomicLimits, readSysfs, sysfsBlockDir, sysfsEntries, sysfsHas } from '../sysfs';
import { runTrial, type TrialRecord } from './trial';

export type { TrialRecord } from './trial';

export { ProbeError, type ProbeErrorCode } from '../errors';

export type DeviceKind = 'disk' | 'partition' | 'dm' | 'md' | 'loop';

/** One block device under the target, with its sysfs atomic-write limits (bytes, 0 = none). */
export interface ProbeDevice {
  /** Kernel name, e.g. "nvme0n1p2", "dm-0", "loop3". */
  name: string;
  kind: DeviceKind;
  /** "MAJ:MIN". */
  majorMinor: string;
  /** From queue/atomic_write_*_bytes (a partition's are its disk's). */
  unitMinBytes: number;
  unitMaxBytes: number;
  maxBytes: number;
  boundaryBytes: number;
  /** Names of the devices this one is built on: a partition's disk, a dm or md device's slaves. */
  members: string[];
  /** A loop device's backing file. */
  backingFile?: string;
  /** A device-mapper device's name, e.g. "vg0-data". */
  dmName?: string;
}

export interface ProbeFilesystem {
  type: string;
  mountPoint: string;
  options: string;
  /** statfs f_bsize. */
  blockSize: number;
  /** What was mounted, e.g. /dev/nvme0n1p2. */
  source: string;
}

/** The `untorn probe --json` document (API.md), with additions that keep API.md's names. */
export interface ProbeReport {
  /** The path probed, made absolute. */
  target: string;
  kind: 'file' | 'directory' | 'block-device';
  /**
   * Whose statx `statx` is: the target itself, or (for a directory) a file
   * created there for the purpose, which is what a new file would get.
   */
  statxOf: 'target' | 'new-file';
  kernel: string;
  filesystem: ProbeFilesystem | null;
  statx: AtomicWriteInfo;
  blockDevice: BlockDeviceLimits | null;
  /** The device chain from the filesystem's (or the target's) device down, depth first. */
  devices: ProbeDevice[];
  atomicPath: AtomicPath;
  paths: AtomicPaths;
  verdict: string;
  advice: string[];
  trial?: TrialRecord[];
}

export interface ProbeOptions {
  /** Also attempt real atomic writes on a temporary file (never on a block device). */
  try?: boolean;
  signal?: AbortSignal;
}

const S_IFMT = 0o170000;
const KINDS: Record<number, ProbeReport['kind']> = { 0o100000: 'file', 0o040000: 'directory', 0o060000: 'block-device' };
const OTHER_TYPES: Record<number, string> = { 0o010000: 'a FIFO', 0o140000: 'a socket', 0o020000: 'a character device' };

/** What the target is, or a ProbeError for what probe cannot report on. */
function targetKind(target: string, mode: number): ProbeReport['kind'] {
  const kind = KINDS[mode & S_IFMT];
  if (kind !== undefined) return kind;
  const what = OTHER_TYPES[mode & S_IFMT] ?? 'not a regular file, directory or block device';
  throw new ProbeError('ERR_PROBE_FILE_TYPE', `${target} is ${what}; probe a regular file, a directory or a block device`);
}

const PAGE = 16384;

async function deviceKind(dir: string, isPartition: boolean): Promise<DeviceKind> {
  if (isPartition) return 'partition';
  if (await sysfsHas(path.join(dir, 'dm'))) return 'dm';
  if (await sysfsHas(path.join(dir, 'md'))) return 'md';
  // An unbound loop device has no loop/ folder: go by the name too.
  if (/^loop\d+$/.test(path.basename(dir)) || (await sysfsHas(path.join(dir, 'loop')))) return 'loop';
  return 'disk';
}

/**
 * The block devices from the sysfs device folder `top` down, depth first: a
 * partition, then its disk; a dm or md device, then its slaves (and theirs).
 */
export async function devicesUnder(top: string): Promise<ProbeDevice[]> {
  const devices: ProbeDevice[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const name = path.basename(dir);
    if (seen.has(name)) return;
    seen.add(name);
    const { disk, isPartition } = await diskOf(dir);
    const slaves = path.join(dir, 'slaves');
    const memberDirs = isPartition
      ? [disk]
      : await Promise.all((await sysfsEntries(slaves)).map((slave) => fsp.realpath(path.join(slaves, slave))));
    const device: ProbeDevice = {
      name,
      kind: await deviceKind(dir, isPartition),
      majorMinor: (await readSysfs(path.join(dir, 'dev'))) ?? '',
      ...(await queueAtomicLimits(disk)),
      members: memberDirs.map((member) => path.basename(member)),
    };
    const backingFile = await readSysfs(path.join(dir, 'loop', 'backing_file'));
    if (backingFile !== null) device.backingFile = backingFile;
    const dmName = await readSysfs(path.join(dir, 'dm', 'name'));
    if (dmName !== null) device.dmName = dmName;
    devices.push(device);
    for (const member of memberDirs) await visit(member);
  };
  await visit(top);
  return devices;
}

/**
 * statx of a file created in `dir` for the purpose and removed again: a
 * directory's own statx has no atomic limits (XFS and ext4 give them for
 * regular files only), and a new file inherits the directory's settings.
 * Returns the errno code instead when no file can be created there.
 */
async function statNewFile(dir: string): Promise<AtomicWriteInfo | string> {
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

/** Where the target's block device is mounted, if anywhere (for a block device target). */
async function mountsOf(major: number, minor: number): Promise<{ type: string; mountPoint: string }[]> {
  return (await readMountInfo()).filter((m) => m.devMajor === major && m.devMinor === minor);
}

/** What the verdict and advice are decided from. */
export interface StackFacts {
  target: string;
  kind: ProbeReport['kind'];
  kernel: string;
  filesystem: ProbeFilesystem | null;
  info: AtomicWriteInfo;
  blockDevice: BlockDeviceLimits | null;
  devices: ProbeDevice[];
  paths: AtomicPaths;
  /** The errno code for why no file could be created in a directory target (its own statx was used instead). */
  createError: string | null;
  /** Mounts of a block device target. */
  mounts: { type: string; mountPoint: string }[];
}

const DEVICE_SUPPORT = 'NVMe with AWUPF/NAWUPF, or SCSI WRITE ATOMIC';
const XFS_ANY_DEVICE = 'XFS on Linux 6.16+ (with reflink, the mkfs.xfs default) writes atomically on any device, by software copy-on-write where the device cannot';
const SOFTWARE_COST =
  'in untorn\'s own runs (XFS over loop devices, 16 KB pages in 64-page batches) it wrote about half as many pages per second as double-write';
const HARDWARE_PAYOFF =
  'Hardware atomic writes cost about what a plain write costs: a database that writes its pages with RWF_ATOMIC can drop its torn-page protection (double-write buffer, full-page writes) for pages of these sizes.';

/** "loop3", or "dm-0 (over sda1, sdb1)": the device an atomic write would reach. */
function deviceName(s: StackFacts): string {
  const top = s.devices[0];
  const name = s.blockDevice?.device ?? top?.name ?? s.filesystem?.source ?? 'the device';
  return top && (top.kind === 'dm' || top.kind === 'md') && top.members.length > 0
    ? `${name} (over ${top.members.join(', ')})`
    : name;
}

/** The directory `untorn bench` should be pointed at. */
function benchDir(s: StackFacts): string {
  return s.kind === 'directory' ? s.target : path.dirname(s.target);
}

/** The verdict and advice of a probe report. */
export interface Assessment {
  verdict: string;
  advice: string[];
}

/** The hardware-only stacks (ext4, a raw device, another filesystem): the range statx gives is the device's. */
function assessHardware(s: StackFacts, what: string): Assessment {
  const sizes = formatRange(s.paths.hardwareMin, s.paths.hardwareMax);
  return atomicPathFor(s.paths, PAGE) === 'hardware'
    ? { verdict: `16 KB pages: atomic in hardware on ${deviceName(s)} (${sizes})`, advice: [HARDWARE_PAYOFF] }
    : { verdict: `16 KB pages: not atomic: ${what} writes ${sizes} atomically here, in hardware on ${deviceName(s)}`, advice: [] };
}

function assessBlockDevice(s: StackFacts): Assessment {
  const name = s.devices[0]?.name ?? path.basename(s.target);
  const mounted = s.mounts.map((m) => `It is mounted at ${m.mountPoint} (${m.type}): probe a path there for what that filesystem offers.`);
  if (!s.info.supported) {
    return {
      verdict: `16 KB pages: no atomic writes: ${name} has no hardware atomic write support`,
      advice: [
        `Hardware atomic writes need a device that offers them (${DEVICE_SUPPORT}); loop, virtio and zram devices offer none.`,
        `${XFS_ANY_DEVICE}.`,
        ...mounted,
      ],
    };
  }
  const { verdict, advice } = assessHardware(s, name);
  return {
    verdict,
    advice: [
      ...advice,
      `On this device, XFS (Linux 6.16+) uses the hardware up to ${formatBytes(s.paths.hardwareMax)} and software copy-on-write beyond; ext4 uses the hardware only, and needs bigalloc for writes above its block size.`,
      ...mounted,
    ],
  };
}

function assessXfs(s: StackFacts): Assessment {
  const { info, paths, kernel } = s;
  const dev = deviceName(s);
  const before616 = !kernelAtLeast(kernel, 6, 16);
  if (!info.supported) {
    if (before616) {
      return {
        verdict: `16 KB pages: no atomic writes: XFS before Linux 6.16 needs device support, and ${dev} has none`,
        advice: [
          'Upgrade to Linux 6.16+, where XFS (with reflink, the mkfs.xfs default) falls back to software copy-on-write on any device.',
          `Before 6.16, XFS writes at most one filesystem block atomically, and only on a device with atomic write support (${DEVICE_SUPPORT}).`,
        ],
      };
    }
    const mp = s.filesystem?.mountPoint ?? benchDir(s);
    return {
      verdict: `16 KB pages: no atomic writes: this XFS offers none (no reflink, and no device support on ${dev})`,
      advice: [
        `XFS writes atomically in software only with reflink: check \`xfs_info ${mp}\` for reflink=1 (mkfs.xfs sets it by default; it cannot be added later).`,
        `Without reflink, XFS needs a device with atomic write support (${DEVICE_SUPPORT}).`,
        ...(/\bdax\b/.test(s.filesystem?.options ?? '') ? ['DAX mounts have no atomic writes: mount without -o dax.'] : []),
      ],
    };
  }
  const path16 = atomicPathFor(paths, PAGE);
  const all = formatRange(paths.unitMin, paths.softwareMax);
  const advice: string[] = [];
  let verdict: string;
  if (paths.hardwareMax > 0) {
    const hw = formatRange(paths.hardwareMin, paths.hardwareMax);
    const beyond = paths.softwareMax > paths.hardwareMax;
    verdict = path16 === 'hardware'
      ? `16 KB pages: atomic in hardware on ${dev} (${hw})${beyond ? `; XFS software copy-on-write above that, up to ${formatBytes(paths.softwareMax)}` : ''}`
      : path16 === 'software'
        ? `16 KB pages: atomic via XFS software copy-on-write (${all}); hardware on ${dev} covers only ${hw}`
        : `16 KB pages: not atomic: this XFS writes ${all} atomically (in hardware on ${dev}${beyond ? ` up to ${formatBytes(paths.hardwareMax)}` : ''})`;
    if (path16 === 'hardware') advice.push(HARDWARE_PAYOFF);
    if (beyond) {
      advice.push(`Keep atomic writes within ${hw} for the hardware path: larger ones (up to ${formatBytes(paths.softwareMax)}) take XFS's software copy-on-write path, which costs far more than the write itself.`);
    }
  } else {
    verdict = path16 === 'software'
      ? `16 KB pages: atomic via XFS software copy-on-write (${all}); no hardware atomic writes on ${dev}`
      : `16 KB pages: not atomic: this XFS writes ${all} atomically (software copy-on-write; no hardware atomic writes on ${dev})`;
    advice.push(
      `Every atomic write here takes XFS's software copy-on-write path: ${SOFTWARE_COST}. Run \`untorn bench ${benchDir(s)}\` to measure this stack.`,
      `For atomic writes at about the cost of a plain write, put XFS on a device with hardware atomic writes (${DEVICE_SUPPORT}).`,
    );
  }
  if (paths.unitMin > PAGE) {
    advice.push(`The smallest atomic write here is one filesystem block (${formatBytes(paths.unitMin)}): for 16 KB pages use an XFS made with 16 KiB blocks or smaller (mkfs.xfs -b size=16384).`);
  } else if (before616 && info.unitMax < PAGE) {
    advice.push(`XFS before Linux 6.16 writes one filesystem block (${formatBytes(info.unitMin)}) atomically at most: upgrade to 6.16+ for larger writes, or make the filesystem with 16 KiB blocks (mkfs.xfs -b size=16384).`);
  }
  return { verdict, advice };
}

function assessExt4(s: StackFacts): Assessment {
  const { info, kernel } = s;
  const blockSize = formatBytes(s.filesystem?.blockSize ?? info.blockSize);
  const bigalloc = `For writes above its block size (${blockSize}), ext4 also needs bigalloc (mkfs.ext4 -O bigalloc -C 16384) and a device whose atomic limit covers the cluster.`;
  if (info.supported) {
    const { verdict, advice } = assessHardware(s, 'ext4');
    return { verdict, advice: info.unitMax < PAGE ? [...advice, bigalloc] : advice };
  }
  const dev = deviceName(s);
  const device = s.blockDevice;
  const verdict = !kernelAtLeast(kernel, 6, 13)
    ? '16 KB pages: no atomic writes: ext4 has them only from Linux 6.13, and only with device support'
    : device && device.unitMaxBytes > 0
      ? `16 KB pages: no atomic writes: ext4 does not use ${dev}'s atomic writes (${formatRange(device.unitMinBytes, device.unitMaxBytes)}): its block size ${blockSize} must lie within them`
      : `16 KB pages: no atomic writes: ext4 needs a device with atomic write support, and ${dev} has none`;
  return {
    verdict,
    advice: [
      `ext4 writes atomically only through the device: it needs ${DEVICE_SUPPORT} (loop, virtio and zram devices have none).`,
      bigalloc,
      `Or use XFS: ${XFS_ANY_DEVICE}.`,
    ],
  };
}

const NO_ATOMIC_HINTS: Record<string, string> = {
  overlay: 'In a container, put the data directory on a volume of XFS or ext4: overlay passes no atomic writes through.',
  tmpfs: 'tmpfs lives in RAM: its contents do not survive a crash, so neither does a torn page.',
};

function assessOther(s: StackFacts, type: string): Assessment {
  if (s.info.supported) return assessHardware(s, type);
  return {
    verdict: `16 KB pages: no atomic writes: ${type} does not support them`,
    advice: [
      `Put the data on XFS (Linux 6.16+ for writes larger than one block; software copy-on-write on any device) or on ext4 over a device with atomic write support (${DEVICE_SUPPORT}).`,
      ...(NO_ATOMIC_HINTS[type] ? [NO_ATOMIC_HINTS[type]] : []),
    ],
  };
}

/** The one-line verdict and concrete advice for a stack, per KERNEL.md's facts. */
export function assessStack(s: StackFacts): Assessment {
  const { verdict, advice } = assessFacts(s);
  if (s.createError === null) return { verdict, advice };
  const note = `Could not create a file in ${s.target} (${s.createError}): the limits shown are the directory's own statx, not a file's.`;
  return { verdict, advice: [note, ...advice] };
}

function assessFacts(s: StackFacts): Assessment {
  if (!kernelAtLeast(s.kernel, 6, 11)) {
    return {
      verdict: `16 KB pages: no atomic writes: kernel ${s.kernel} predates RWF_ATOMIC (Linux 6.11)`,
      advice: ['Upgrade to Linux 6.11 or later for atomic writes; to 6.16 or later for XFS to write more than one block atomically (by software copy-on-write on any device).'],
    };
  }
  if (s.filesystem === null) return assessBlockDevice(s);
  const { type } = s.filesystem;
  if (type !== 'xfs' && type !== 'ext4') return assessOther(s, type);
  if (s.createError !== null && !s.info.supported) {
    return {
      verdict: `16 KB pages: unknown: ${type} reports atomic limits for regular files only, and none could be created in ${s.target} (${s.createError})`,
      advice: [`Probe an existing file in ${s.target}, or run as a user who may create files there.`],
    };
  }
  return type === 'xfs' ? assessXfs(s) : assessExt4(s);
}

/** A line of advice about what --try found, if the kernel disagreed with statx anywhere. */
function trialAdvice(trial: TrialRecord[]): string[] {
  const surprises = trial.filter((t) => t.ok !== t.expected);
  if (surprises.length === 0) return [];
  const list = surprises.map((t) => `${formatBytes(t.length)} at ${formatBytes(t.position)}${t.buffered ? ' buffered' : ''}: ${t.ok ? 'accepted' : t.code}`);
  return [`The kernel disagreed with statx on ${surprises.length} of ${trial.length} trial writes (${list.join('; ')}).`];
}

/** runTrial, with a failing system call (no file can be made there, ENOSPC, ...) as one line that says where. */
async function tryWrites(dir: string, signal: AbortSignal | undefined): Promise<TrialRecord[]> {
  try {
    return await runTrial(dir, signal);
  } catch (err) {
    if (!(err instanceof Error && 'syscall' in err)) throw err;
    throw new ProbeError('ERR_PROBE_TRY_FAILED', `--try needs a temporary file in ${dir}: ${err.message}`, { cause: err });
  }
}

/** The whole report for `target`: a regular file, a directory or a block device. */
export async function probe(target: string, options: ProbeOptions = {}): Promise<ProbeReport> {
  const { signal } = options;
  signal?.throwIfAborted();
  const absolute = path.resolve(target);
  // statx, not open: opening a FIFO would block, and the type decides everything else.
  const st = await rawStat(absolute);
  const kind = targetKind(absolute, st.mode);
  if (options.try && kind === 'block-device') {
    throw new ProbeError('ERR_PROBE_TRY_DEVICE', `--try writes to a temporary file and never to a device: probe ${absolute} without --try, or probe a path on a filesystem on it`);
  }

  let info = toAtomicWriteInfo(st);
  let statxOf: ProbeReport['statxOf'] = 'target';
  let createError: string | null = null;
  if (kind === 'directory') {
    const created = await statNewFile(absolute);
    if (typeof created === 'string') createError = created;
    else [info, statxOf] = [created, 'new-file'];
  }
  signal?.throwIfAborted();

  const isDevice = kind === 'block-device';
  const [major, minor] = isDevice ? [st.rdevMajor, st.rdevMinor] : [st.devMajor, st.devMinor];
  const mount = isDevice ? null : await findMount(absolute, major, minor);
  const filesystem = mount && {
    type: mount.type, mountPoint: mount.mountPoint, options: mount.options, blockSize: mount.blockSize, source: mount.source,
  };
  const blockDevice = await blockDeviceLimits(absolute);
  const sysfsDir = await sysfsBlockDir(major, minor);
  // An anonymous device (tmpfs, overlay, btrfs) has no block devices under it.
  const devices = sysfsDir === null ? [] : await devicesUnder(sysfsDir);
  const paths = atomicPaths(filesystem?.type ?? null, info, blockDevice);
  const kernel = kernelRelease();
  const { verdict, advice } = assessStack({
    target: absolute, kind, kernel, filesystem, info, blockDevice, devices, paths, createError,
    mounts: isDevice ? await mountsOf(major, minor) : [],
  });
  const report: ProbeReport = {
    target: absolute, kind, statxOf, kernel, filesystem, statx: info, blockDevice, devices,
    atomicPath: bestAtomicPath(paths), paths, verdict, advice,
  };
  if (options.try) {
    report.trial = await tryWrites(kind === 'directory' ? absolute : path.dirname(absolute), signal);
    advice.push(...trialAdvice(report.trial));
  }
  return report;
}
