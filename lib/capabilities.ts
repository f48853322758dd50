// What the kernel says a file can write atomically: statx of the file, and
// the sysfs limits of the block device under it.
import { binding, type RawStat } from './binding';
import { fsError } from './errors';
import type { AtomicWriteInfo, BlockDeviceLimits } from './info';
import { runAsync, runSync } from './steps';
import { deviceLimitsOf } from './sysfs';
import { validateTarget } from './validate';

export type { BlockDeviceLimits } from './info';

const STATX_DIOALIGN = 0x2000;
const S_IFMT = 0o170000;
const S_IFBLK = 0o060000;

/** The public view of a raw statx: unsupported means zero limits, unknown alignment means 0. */
export function toAtomicWriteInfo(st: RawStat): AtomicWriteInfo {
  const supported =
    (st.mask & binding.STATX_WRITE_ATOMIC) !== 0 &&
    (st.attributes & binding.STATX_ATTR_WRITE_ATOMIC) !== 0 &&
    st.unitMin > 0;
  const dioKnown = (st.mask & STATX_DIOALIGN) !== 0;
  return Object.freeze({
    supported,
    unitMin: supported ? st.unitMin : 0,
    unitMax: supported ? st.unitMax : 0,
    unitMaxOpt: supported ? st.unitMaxOpt : 0,
    segmentsMax: supported ? st.segmentsMax : 0,
    dioMemAlign: dioKnown ? st.dioMemAlign : 0,
    dioOffsetAlign: dioKnown ? st.dioOffsetAlign : 0,
    blockSize: st.blksize,
  });
}

function statResult(result: RawStat | number, target: string | number): RawStat {
  if (typeof result === 'number') throw fsError(result, 'statx', typeof target === 'string' ? target : undefined);
  return result;
}

export async function rawStat(target: string | number): Promise<RawStat> {
  validateTarget(target);
  return statResult(await binding.statx(target), target);
}

export function rawStatSync(target: string | number): RawStat {
  validateTarget(target);
  return statResult(binding.statxSync(target), target);
}

/** statx(STATX_WRITE_ATOMIC) of a path or an open file descriptor. */
export async function statAtomic(target: string | number): Promise<AtomicWriteInfo> {
  return toAtomicWriteInfo(await rawStat(target));
}

export function statAtomicSync(target: string | number): AtomicWriteInfo {
  return toAtomicWriteInfo(rawStatSync(target));
}

/**
 * The limits of the block device that holds `target` (or that `target` is).
 * null where there is none: tmpfs, overlay, btrfs's anonymous devices.
 */
export async function blockDeviceLimits(target: string | number): Promise<BlockDeviceLimits | null> {
  return runAsync(deviceLimitsOf(...deviceOf(await rawStat(target))));
}

export function blockDeviceLimitsSync(target: string | number): BlockDeviceLimits | null {
  return runSync(deviceLimitsOf(...deviceOf(rawStatSync(target))));
}

/** The device a file is on, or that a block device node is. */
function deviceOf(st: RawStat): [number, number] {
  const isBlockDevice = (st.mode & S_IFMT) === S_IFBLK;
  return isBlockDevice ? [st.rdevMajor, st.rdevMinor] : [st.devMajor, st.devMinor];
}
