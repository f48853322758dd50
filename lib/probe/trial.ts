// `untorn probe --try`: real pwritev2(RWF_ATOMIC) calls on a temporary file,
// straight through the native binding so that untorn's own checks do not
// refuse them first: what is reported is what the kernel accepted, and the
// errno it gave otherwise (as fstests does when it checks a filesystem).
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { binding } from '../binding';
import { allocAligned } from '../buffers';
import { rawStat, toAtomicWriteInfo } from '../capabilities';
import { fsError } from '../errors';
import type { AtomicWriteInfo } from '../info';
import { DEFAULT_PAGE_SIZE } from '../validate';

/** One attempted atomic write. */
export interface TrialRecord {
  /** What the case checks, e.g. "power of two", "misaligned offset". */
  what: string;
  length: number;
  position: number;
  /** Written through a descriptor opened without O_DIRECT. */
  buffered: boolean;
  /** The kernel accepted the write. */
  ok: boolean;
  /** The errno's name when it did not, e.g. "EINVAL". */
  code?: string;
  /** Whether statx's limits say the kernel should accept it. */
  expected: boolean;
}

type Plan = Omit<TrialRecord, 'ok' | 'code'>;

/** The largest atomic write tried: unitMax can be hundreds of MiB on a big XFS. */
export const TRIAL_CAP = 64 * 1024 * 1024;
const SECTOR = 512;
/** The page size of most CPUs and filesystems, tried besides the probe's own. */
const SMALL_PAGE = 4096;

/**
 * The writes to try, given the temporary file's statx: every power of two
 * from unitMin up to unitMax (capped), then the classic refusals. Where
 * statx says unsupported, 4 KiB and the page size probed (16 KiB unless
 * told), to show the errno.
 */
export function planTrials(info: AtomicWriteInfo, pageSize = DEFAULT_PAGE_SIZE): Plan[] {
  const direct = (what: string, length: number, position: number, expected = false): Plan => ({
    what,
    length,
    position,
    buffered: false,
    expected,
  });
  if (!info.supported) {
    const sizes = [...new Set([SMALL_PAGE, pageSize])].sort((a, b) => a - b);
    return [
      ...sizes.map((size) => direct('page size', size, size)),
      { what: 'buffered', length: SMALL_PAGE, position: SMALL_PAGE, buffered: true, expected: false },
    ];
  }
  const { unitMin, unitMax } = info;
  const plans: Plan[] = [];
  for (let length = unitMin; length <= Math.min(unitMax, TRIAL_CAP); length *= 2) {
    plans.push(direct('power of two', length, length, true));
  }
  if (unitMax * 2 <= TRIAL_CAP) plans.push(direct('above unitMax', unitMax * 2, unitMax * 2));
  // Position 0 suits any length, so only the length is at fault.
  if (unitMin - SECTOR > 0) plans.push(direct('below unitMin', unitMin - SECTOR, 0));
  plans.push(direct(unitMin + SECTOR > unitMax ? 'above unitMax' : 'not a power of two', unitMin + SECTOR, 0));
  // Sector-aligned, so O_DIRECT would take it: only the natural alignment is at fault.
  if (unitMin / 2 >= SECTOR) plans.push(direct('misaligned offset', unitMin, unitMin / 2));
  if (unitMin * 2 <= unitMax) plans.push(direct('misaligned offset', unitMin * 2, unitMin));
  plans.push({ what: 'buffered', length: unitMin, position: unitMin, buffered: true, expected: false });
  return plans;
}

/** The kernel's name for -errno. */
const errnoName = (errno: number): string => fsError(errno, 'pwritev2').code;

/**
 * Runs the planned writes on a temporary file in `dir` (a directory on the
 * filesystem to test) and removes the file again, also when `signal` aborts
 * (it is checked between writes). `pageSize` as for planTrials.
 */
export async function runTrial(
  dir: string,
  signal?: AbortSignal,
  pageSize = DEFAULT_PAGE_SIZE,
): Promise<TrialRecord[]> {
  const file = path.join(dir, `.untorn-try-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await fsp.open(file, 'wx+', 0o600);
  let directFd = -1;
  try {
    // The buffered case writes through `handle`, which has no O_DIRECT.
    directFd = await binding.open(file, constants.O_RDWR, 0);
    if (directFd < 0) throw fsError(directFd, 'open', file);
    const info = toAtomicWriteInfo(await rawStat(directFd));
    const plans = planTrials(info, pageSize);
    await handle.truncate(Math.max(...plans.map((p) => p.position + p.length)));
    const buffer = allocAligned(Math.max(...plans.map((p) => p.length)), Math.max(4096, info.dioMemAlign)).fill(0xa5);
    const records: TrialRecord[] = [];
    for (const plan of plans) {
      signal?.throwIfAborted();
      const fd = plan.buffered ? handle.fd : directFd;
      const result = await binding.pwritev2(fd, buffer.subarray(0, plan.length), plan.position, binding.RWF_ATOMIC);
      records.push(result < 0 ? { ...plan, ok: false, code: errnoName(result) } : { ...plan, ok: true });
    }
    return records;
  } finally {
    try {
      if (directFd >= 0) await binding.close(directFd);
      await handle.close();
    } finally {
      await fsp.rm(file, { force: true });
    }
  }
}
