// `untorn probe` as a library function: what the whole storage stack under a
// path offers for atomic writes (kernel, mount, statx, block devices), which
// path they take, and a verdict with advice; with `try`, what the kernel
// actually accepts. This module puts the parts together: the target's statx
// (./statx-probe), the device chain (./devices), the verdict (./verdict) and
// the trial writes (./trial).
import path from 'node:path';
import { blockDeviceLimits, rawStat, toAtomicWriteInfo } from '../capabilities';
import { invalidArgType, ProbeError } from '../errors';
import { ioEngine } from '../engine';
import { atomicPathFor, atomicPaths, findMount, kernelRelease, readMountInfo, type MountLine } from '../stack';
import { sysfsBlockDir } from '../sysfs';
import { DEFAULT_PAGE_SIZE, validatePageSize } from '../validate';
import { devicesUnder } from './devices';
import { statNewFile, targetKind } from './statx-probe';
import { runTrial, type TrialRecord } from './trial';
import type { ProbeOptions, ProbeReport } from './types';
import { assessStack, trialAdvice } from './verdict';

export { ProbeError, type ProbeErrorCode } from '../errors';
export type { DeviceKind, ProbeDevice } from './devices';
export type { TrialRecord } from './trial';
export type { ProbeFilesystem, ProbeOptions, ProbeReport, TargetKind } from './types';

/** The options, checked, with the page size filled in. */
function resolveOptions(options: ProbeOptions): { pageSize: number; try: boolean; signal?: AbortSignal } {
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  const pageSize = options.pageSize === undefined ? DEFAULT_PAGE_SIZE : options.pageSize;
  validatePageSize(pageSize);
  return { pageSize, try: options.try === true, signal: options.signal };
}

/** Where the target's block device is mounted, if anywhere (for a block device target). */
async function mountsOf(major: number, minor: number): Promise<MountLine[]> {
  return (await readMountInfo()).filter((m) => m.devMajor === major && m.devMinor === minor);
}

/** runTrial, with a failing system call (no file can be made there, ENOSPC, ...) as one line that says where. */
async function tryWrites(dir: string, pageSize: number, signal: AbortSignal | undefined): Promise<TrialRecord[]> {
  try {
    return await runTrial(dir, signal, pageSize);
  } catch (err) {
    if (!(err instanceof Error && 'syscall' in err)) throw err;
    throw new ProbeError('ERR_PROBE_TRY_FAILED', `--try needs a temporary file in ${dir}: ${err.message}`, {
      cause: err,
    });
  }
}

/** The whole report for `target`: a regular file, a directory or a block device. */
export async function probe(target: string, options: ProbeOptions = {}): Promise<ProbeReport> {
  const { signal, pageSize, try: attempt } = resolveOptions(options);
  signal?.throwIfAborted();
  const absolute = path.resolve(target);
  // statx, not open: opening a FIFO would block, and the type decides everything else.
  const st = await rawStat(absolute);
  const kind = targetKind(absolute, st.mode);
  if (attempt && kind === 'block-device') {
    throw new ProbeError(
      'ERR_PROBE_TRY_DEVICE',
      `--try writes to a temporary file and never to a device: probe ${absolute} without --try, or probe a path on a filesystem on it`,
    );
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
    type: mount.type,
    mountPoint: mount.mountPoint,
    options: mount.options,
    blockSize: mount.blockSize,
    source: mount.source,
  };
  const blockDevice = await blockDeviceLimits(absolute);
  const sysfsDir = await sysfsBlockDir(major, minor);
  // An anonymous device (tmpfs, overlay, btrfs) has no block devices under it.
  const devices = sysfsDir === null ? [] : await devicesUnder(sysfsDir);
  const paths = atomicPaths(filesystem?.type ?? null, info, blockDevice);
  const kernel = kernelRelease();
  const { verdict, advice } = assessStack({
    target: absolute,
    kind,
    kernel,
    filesystem,
    info,
    blockDevice,
    devices,
    paths,
    createError,
    pageSize,
    mounts: isDevice ? await mountsOf(major, minor) : [],
  });
  const report: ProbeReport = {
    target: absolute,
    kind,
    statxOf,
    kernel,
    engine: ioEngine(),
    filesystem,
    statx: info,
    blockDevice,
    devices,
    // The path of a write of the page size (docs/api.md): a smaller size on the
    // hardware path says nothing about the page.
    atomicPath: atomicPathFor(paths, pageSize),
    pageSize,
    paths,
    verdict,
    advice,
  };
  if (attempt) {
    report.trial = await tryWrites(kind === 'directory' ? absolute : path.dirname(absolute), pageSize, signal);
    advice.push(...trialAdvice(report.trial));
  }
  return report;
}
