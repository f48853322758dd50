// The shape of a bench run: what it was asked to do and what it found
// (docs/api.md, "untorn bench --json"; fields beyond those it names are additions).
import type { BlockDeviceLimits } from '../info';
import type { AtomicWriteInfo } from '../info';
import type { AtomicPath } from '../stack';

export type Strategy = 'atomic' | 'doublewrite' | 'unprotected' | 'pagefile' | 'journal';
/**
 * Every strategy a bench takes; 'pagefile' writes through a PageFile and 'journal' through a Journal,
 * each with the strategy it picks itself.
 */
export const STRATEGIES: readonly Strategy[] = ['atomic', 'doublewrite', 'unprotected', 'pagefile', 'journal'];
/** What a bench runs unless told otherwise: the three ways of writing pages by hand. */
export const DEFAULT_STRATEGIES: readonly Strategy[] = ['atomic', 'doublewrite', 'unprotected'];

export type SyncMode = 'batch' | 'page';
export type Pattern = 'random' | 'sequential';

export interface BenchConfig {
  pageSize: number;
  /** Pages per durability point. */
  batch: number;
  /** Writes in flight. */
  depth: number;
  sync: SyncMode;
  pattern: Pattern;
  /** Working set: the data file holds this many pages. */
  pages: number;
  strategies: Strategy[];
  /** Measured rounds; strategies take turns within each. */
  rounds: number;
  /** Page writes per strategy over all rounds, or null when the run is timed. */
  writes: number | null;
  /** Measured seconds per strategy over all rounds, or null when the run counts writes. */
  duration: number | null;
}

export interface BenchStack {
  kernel: string;
  /** Filesystem type, e.g. "xfs". */
  filesystem: string;
  mountPoint: string;
  mountOptions: string;
  statx: AtomicWriteInfo;
  blockDevice: BlockDeviceLimits | null;
  /** The path a page-size atomic write takes here. */
  atomicPath: AtomicPath;
  /** Kernel name of the block device whose write counters were read (e.g. "loop3"), or null. */
  counterDevice: string | null;
}

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
}

/** A figure as a ratio to the same figure for unprotected (null where either is unknown). */
export interface VsUnprotected {
  pagesPerSec: number | null;
  mibPerSec: number | null;
  latencyP50: number | null;
  latencyP99: number | null;
  latencyP999: number | null;
  batchLatencyP50: number | null;
  batchLatencyP99: number | null;
  batchLatencyP999: number | null;
  deviceBytesPerPage: number | null;
  flushesPerPage: number | null;
  deviceFlushesPerPage: number | null;
}

export interface StrategyResult {
  strategy: Strategy;
  /** Measured page writes, all rounds. */
  pagesWritten: number;
  /**
   * The most writes in flight at once in measured rounds, as counted where
   * they run: submitted to the ring and not completed, or running on a pool thread.
   */
  depthReached: number;
  /**
   * sha256 (hex, 16 digits) of the page numbers written in order, warm-up
   * included: strategies that wrote the same pages in the same order match.
   */
  pagesDigest: string;
  /** Median over rounds. */
  pagesPerSec: number;
  mibPerSec: number;
  /** Slowest and fastest round, pages/s: the spread around the median. */
  pagesPerSecRange: { min: number; max: number };
  /** Per page write, issue to completion, all rounds pooled (µs). */
  latencyUs: Percentiles;
  /** Per batch, first write issued to durable (µs). */
  batchLatencyUs: Percentiles;
  /** Bytes the block device wrote per page (/sys/.../stat), null without a block device. */
  deviceBytesPerPage: number | null;
  /** Durability calls issued per page: fdatasync calls plus RWF_DSYNC writes. */
  flushesPerPage: number;
  /** Flush requests the block device received per page, null without a block device. */
  deviceFlushesPerPage: number | null;
  /** Ratios to unprotected; null when unprotected was not run. */
  vsUnprotected: VsUnprotected | null;
  /** For 'pagefile': the strategy the page file picked, and why. */
  pageFile?: { strategy: 'atomic' | 'doublewrite' | 'unprotected'; reason: string };
  /** For 'journal': the strategy the journal picked, and why. */
  journal?: { strategy: 'atomic' | 'doublewrite'; reason: string };
}

/** The engine the async writes ran on (ioEngine()), with the pool's size where that was it. */
export interface BenchEngine {
  name: 'io_uring' | 'threadpool';
  reason: string;
  /**
   * UV_THREADPOOL_SIZE (default 4) on the thread pool, null on io_uring.
   * libuv reads it once, when its pool first starts: depthReached says what really ran.
   */
  threads: number | null;
}

export interface BenchReport {
  stack: BenchStack;
  engine: BenchEngine;
  config: BenchConfig;
  results: StrategyResult[];
  /** One line in plain words. */
  verdict: string;
  /** Why a strategy was left out, and other things the reader should know. */
  notes: string[];
}
