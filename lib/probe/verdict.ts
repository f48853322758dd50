// The verdict and advice of a probe report: what the facts of a storage stack
// (kernel, filesystem, statx, block devices) mean for atomic writes of one
// page size, in words a user can act on. The kernel facts behind them are
// in docs/kernel.md.
import path from 'node:path';
import { formatBytes, formatRange } from '../format';
import type { AtomicWriteInfo, BlockDeviceLimits } from '../info';
import { atomicPathFor, kernelAtLeast, type AtomicPaths } from '../stack';
import { DEFAULT_PAGE_SIZE } from '../validate';
import type { ProbeDevice } from './devices';
import type { TrialRecord } from './trial';
import type { ProbeFilesystem, TargetKind } from './types';

/** What the verdict and advice are decided from. */
export interface StackFacts {
  target: string;
  kind: TargetKind;
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
  /** The page size in bytes the verdict is about (ProbeOptions.pageSize). */
  pageSize: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** "16 KB pages", "2 MB pages", "512-byte pages": what every verdict starts with. */
export function pagesLabel(pageSize: number): string {
  if (pageSize % MiB === 0) return `${pageSize / MiB} MB pages`;
  return pageSize % KiB === 0 ? `${pageSize / KiB} KB pages` : `${pageSize}-byte pages`;
}

// XFS takes filesystem blocks up to 64 KiB (mkfs.xfs -b size=).
const XFS_MAX_BLOCK = 64 * KiB;

const DEVICE_SUPPORT = 'NVMe with AWUPF/NAWUPF, or SCSI WRITE ATOMIC';
const XFS_ANY_DEVICE =
  'XFS on Linux 6.16+ (with reflink, the mkfs.xfs default) writes atomically on any device, by software copy-on-write where the device cannot';
// No figures here: they would go stale. The README's bench table has this project's measurements.
const SOFTWARE_COST =
  'on XFS over loop devices (no hardware atomic writes), `untorn bench` measured it slower than double-write (README, "Measured here")';
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

/** The `untorn bench` command that measures this stack at this page size. */
function benchCommand(s: StackFacts): string {
  return `untorn bench ${benchDir(s)}${s.pageSize === DEFAULT_PAGE_SIZE ? '' : ` --page-size ${s.pageSize}`}`;
}

/** The verdict and advice of a probe report. */
export interface Assessment {
  verdict: string;
  advice: string[];
}

/** The hardware-only stacks (ext4, a raw device, another filesystem): the range statx gives is the device's. */
function assessHardware(s: StackFacts, what: string): Assessment {
  const sizes = formatRange(s.paths.hardwareMin, s.paths.hardwareMax);
  const pages = pagesLabel(s.pageSize);
  return atomicPathFor(s.paths, s.pageSize) === 'hardware'
    ? { verdict: `${pages}: atomic in hardware on ${deviceName(s)} (${sizes})`, advice: [HARDWARE_PAYOFF] }
    : {
        verdict: `${pages}: not atomic: ${what} writes ${sizes} atomically here, in hardware on ${deviceName(s)}`,
        advice: [],
      };
}

function assessBlockDevice(s: StackFacts): Assessment {
  const name = s.devices[0]?.name ?? path.basename(s.target);
  const mounted = s.mounts.map(
    (m) => `It is mounted at ${m.mountPoint} (${m.type}): probe a path there for what that filesystem offers.`,
  );
  if (!s.info.supported) {
    return {
      verdict: `${pagesLabel(s.pageSize)}: no atomic writes: ${name} has no hardware atomic write support`,
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
  const { info, paths, kernel, pageSize } = s;
  const pages = pagesLabel(pageSize);
  const dev = deviceName(s);
  const before616 = !kernelAtLeast(kernel, 6, 16);
  if (!info.supported) {
    if (before616) {
      return {
        verdict: `${pages}: no atomic writes: XFS before Linux 6.16 needs device support, and ${dev} has none`,
        advice: [
          'Upgrade to Linux 6.16+, where XFS (with reflink, the mkfs.xfs default) falls back to software copy-on-write on any device.',
          `Before 6.16, XFS writes at most one filesystem block atomically, and only on a device with atomic write support (${DEVICE_SUPPORT}).`,
        ],
      };
    }
    const mp = s.filesystem?.mountPoint ?? benchDir(s);
    return {
      verdict: `${pages}: no atomic writes: this XFS offers none (no reflink, and no device support on ${dev})`,
      advice: [
        `XFS writes atomically in software only with reflink: check \`xfs_info ${mp}\` for reflink=1 (mkfs.xfs sets it by default; it cannot be added later).`,
        `Without reflink, XFS needs a device with atomic write support (${DEVICE_SUPPORT}).`,
        ...(/\bdax\b/.test(s.filesystem?.options ?? '')
          ? ['DAX mounts have no atomic writes: mount without -o dax.']
          : []),
      ],
    };
  }
  const pagePath = atomicPathFor(paths, pageSize);
  const all = formatRange(paths.unitMin, paths.softwareMax);
  const advice: string[] = [];
  let verdict: string;
  if (paths.hardwareMax > 0) {
    const hw = formatRange(paths.hardwareMin, paths.hardwareMax);
    const beyond = paths.softwareMax > paths.hardwareMax;
    verdict =
      pagePath === 'hardware'
        ? `${pages}: atomic in hardware on ${dev} (${hw})${beyond ? `; XFS software copy-on-write above that, up to ${formatBytes(paths.softwareMax)}` : ''}`
        : pagePath === 'software'
          ? `${pages}: atomic via XFS software copy-on-write (${all}); hardware on ${dev} covers only ${hw}`
          : `${pages}: not atomic: this XFS writes ${all} atomically (in hardware on ${dev}${beyond ? ` up to ${formatBytes(paths.hardwareMax)}` : ''})`;
    if (pagePath === 'hardware') advice.push(HARDWARE_PAYOFF);
    if (beyond) {
      advice.push(
        `Keep atomic writes within ${hw} for the hardware path: larger ones (up to ${formatBytes(paths.softwareMax)}) take XFS's software copy-on-write path, which costs far more than the write itself.`,
      );
    }
  } else {
    verdict =
      pagePath === 'software'
        ? `${pages}: atomic via XFS software copy-on-write (${all}); no hardware atomic writes on ${dev}`
        : `${pages}: not atomic: this XFS writes ${all} atomically (software copy-on-write; no hardware atomic writes on ${dev})`;
    advice.push(
      `Every atomic write here takes XFS's software copy-on-write path: ${SOFTWARE_COST}. Run \`${benchCommand(s)}\` to measure this stack.`,
      `For atomic writes at about the cost of a plain write, put XFS on a device with hardware atomic writes (${DEVICE_SUPPORT}).`,
    );
  }
  if (paths.unitMin > pageSize) {
    advice.push(
      `The smallest atomic write here is one filesystem block (${formatBytes(paths.unitMin)}): for ${pages} use an XFS made with ${formatBytes(pageSize)} blocks or smaller (mkfs.xfs -b size=${pageSize}).`,
    );
  } else if (before616 && info.unitMax < pageSize) {
    const blocks =
      pageSize <= XFS_MAX_BLOCK
        ? `, or make the filesystem with ${formatBytes(pageSize)} blocks (mkfs.xfs -b size=${pageSize})`
        : '';
    advice.push(
      `XFS before Linux 6.16 writes one filesystem block (${formatBytes(info.unitMin)}) atomically at most: upgrade to 6.16+ for larger writes${blocks}.`,
    );
  }
  return { verdict, advice };
}

function assessExt4(s: StackFacts): Assessment {
  const { info, kernel, pageSize } = s;
  const pages = pagesLabel(pageSize);
  const blockBytes = s.filesystem?.blockSize ?? info.blockSize;
  const blockSize = formatBytes(blockBytes);
  const bigalloc = `For writes above its block size (${blockSize}), ext4 also needs bigalloc (mkfs.ext4 -O bigalloc -C ${pageSize}) and a device whose atomic limit covers the cluster.`;
  if (info.supported) {
    const { verdict, advice } = assessHardware(s, 'ext4');
    return { verdict, advice: info.unitMax < pageSize ? [...advice, bigalloc] : advice };
  }
  const dev = deviceName(s);
  const device = s.blockDevice;
  const verdict = !kernelAtLeast(kernel, 6, 13)
    ? `${pages}: no atomic writes: ext4 has them only from Linux 6.13, and only with device support`
    : device && device.unitMaxBytes > 0
      ? `${pages}: no atomic writes: ext4 does not use ${dev}'s atomic writes (${formatRange(device.unitMinBytes, device.unitMaxBytes)}): its block size ${blockSize} must lie within them`
      : `${pages}: no atomic writes: ext4 needs a device with atomic write support, and ${dev} has none`;
  return {
    verdict,
    advice: [
      `ext4 writes atomically only through the device: it needs ${DEVICE_SUPPORT} (loop, virtio and zram devices have none).`,
      ...(pageSize > blockBytes ? [bigalloc] : []),
      `Or use XFS: ${XFS_ANY_DEVICE}.`,
    ],
  };
}

const NO_ATOMIC_HINTS: Record<string, string> = {
  overlay:
    'In a container, put the data directory on a volume of XFS or ext4: overlay passes no atomic writes through.',
  tmpfs: 'tmpfs lives in RAM: its contents do not survive a crash, so neither does a torn page.',
};

function assessOther(s: StackFacts, type: string): Assessment {
  if (s.info.supported) return assessHardware(s, type);
  return {
    verdict: `${pagesLabel(s.pageSize)}: no atomic writes: ${type} does not support them`,
    advice: [
      `Put the data on XFS (Linux 6.16+ for writes larger than one block; software copy-on-write on any device) or on ext4 over a device with atomic write support (${DEVICE_SUPPORT}).`,
      ...(NO_ATOMIC_HINTS[type] ? [NO_ATOMIC_HINTS[type]] : []),
    ],
  };
}

/** The one-line verdict and concrete advice for a stack, per the kernel's rules (docs/kernel.md). */
export function assessStack(s: StackFacts): Assessment {
  const { verdict, advice } = assessFacts(s);
  if (s.createError === null) return { verdict, advice };
  const note = `Could not create a file in ${s.target} (${s.createError}): the limits shown are the directory's own statx, not a file's.`;
  return { verdict, advice: [note, ...advice] };
}

function assessFacts(s: StackFacts): Assessment {
  const pages = pagesLabel(s.pageSize);
  if (!kernelAtLeast(s.kernel, 6, 11)) {
    return {
      verdict: `${pages}: no atomic writes: kernel ${s.kernel} predates RWF_ATOMIC (Linux 6.11)`,
      advice: [
        'Upgrade to Linux 6.11 or later for atomic writes; to 6.16 or later for XFS to write more than one block atomically (by software copy-on-write on any device).',
      ],
    };
  }
  if (s.filesystem === null) return assessBlockDevice(s);
  const { type } = s.filesystem;
  if (type !== 'xfs' && type !== 'ext4') return assessOther(s, type);
  if (s.createError !== null && !s.info.supported) {
    return {
      verdict: `${pages}: unknown: ${type} reports atomic limits for regular files only, and none could be created in ${s.target} (${s.createError})`,
      advice: [`Probe an existing file in ${s.target}, or run as a user who may create files there.`],
    };
  }
  return type === 'xfs' ? assessXfs(s) : assessExt4(s);
}

/** A line of advice about what --try found, if the kernel disagreed with statx anywhere. */
export function trialAdvice(trial: TrialRecord[]): string[] {
  const surprises = trial.filter((t) => t.ok !== t.expected);
  if (surprises.length === 0) return [];
  const list = surprises.map(
    (t) =>
      `${formatBytes(t.length)} at ${formatBytes(t.position)}${t.buffered ? ' buffered' : ''}: ${t.ok ? 'accepted' : t.code}`,
  );
  return [
    `The kernel disagreed with statx on ${surprises.length} of ${trial.length} trial writes (${list.join('; ')}).`,
  ];
}
