// The shape of a probe report and of probe's options (see ./probe).
import type { IoEngine } from '../engine';
import type { AtomicWriteInfo, BlockDeviceLimits } from '../info';
import type { AtomicPath, AtomicPaths } from '../stack';
import type { ProbeDevice } from './devices';
import type { TrialRecord } from './trial';

export interface ProbeFilesystem {
  type: string;
  mountPoint: string;
  options: string;
  /** statfs f_bsize. */
  blockSize: number;
  /** What was mounted, e.g. /dev/nvme0n1p2. */
  source: string;
}

/** What a probed path is. */
export type TargetKind = 'file' | 'directory' | 'block-device';

/** The `untorn probe --json` document (docs/api.md), with additions that keep its names. */
export interface ProbeReport {
  /** The path probed, made absolute. */
  target: string;
  kind: TargetKind;
  /**
   * Whose statx `statx` is: the target itself, or (for a directory) a file
   * created there for the purpose, which is what a new file would get.
   */
  statxOf: 'target' | 'new-file';
  kernel: string;
  /** What untorn's async calls use in this process (ioEngine()), and why. */
  engine: IoEngine;
  filesystem: ProbeFilesystem | null;
  statx: AtomicWriteInfo;
  blockDevice: BlockDeviceLimits | null;
  /** The device chain from the filesystem's (or the target's) device down, depth first. */
  devices: ProbeDevice[];
  /** The path an atomic write of `pageSize` bytes takes. */
  atomicPath: AtomicPath;
  /** The page size the verdict and `atomicPath` are about (ProbeOptions.pageSize). */
  pageSize: number;
  paths: AtomicPaths;
  verdict: string;
  advice: string[];
  trial?: TrialRecord[];
}

export interface ProbeOptions {
  /** Also attempt real atomic writes on a temporary file (never on a block device). */
  try?: boolean;
  /**
   * The page size the verdict and advice are about, in bytes: a power of two
   * from 512 bytes to 64 MiB, as `untorn bench` takes (default 16384).
   */
  pageSize?: number;
  signal?: AbortSignal;
}
