// untorn: atomic (untorn) page writes on Linux through statx(STATX_WRITE_ATOMIC)
// and pwritev2(RWF_ATOMIC). See docs/api.md for the contract.
export { statAtomic, statAtomicSync, blockDeviceLimits, type BlockDeviceLimits } from './capabilities';
export type { AtomicWriteInfo } from './info';
export { allocAligned } from './buffers';
export { open, openSync, AtomicFile, type WriteOptions, type BatchWriteOptions, type BatchEntry } from './atomic-file';
export { ioEngine, type IoEngine } from './engine';
export {
  AtomicWriteError,
  PageFileError,
  BenchError,
  JournalError,
  type JournalErrorCode,
  type AtomicWriteErrorCode,
  type PageFileErrorCode,
  type SystemError,
  type BatchError,
} from './errors';
export { crc32c } from './crc32c';
export {
  openPageFile,
  PageFile,
  type PageFileOptions,
  type PageFileRecovery,
  type PageFileStrategy,
  type PageWrite,
  type PageFileVerifyResult,
} from './page-file/page-file';
export {
  openJournal,
  openJournalSync,
  Journal,
  JournaledFile,
  type JournalOptions,
  type JournalRecovery,
  type JournalStrategy,
  type JournaledFileFlags,
} from './journal/journal';
export { bench, type BenchOptions, type BenchProgress } from './bench/engine';
export type {
  BenchReport,
  BenchConfig,
  BenchStack,
  BenchEngine,
  StrategyResult,
  Strategy,
  Percentiles,
  VsUnprotected,
} from './bench/types';
export type { AtomicPath } from './stack';
export {
  probe,
  ProbeError,
  type ProbeReport,
  type ProbeOptions,
  type ProbeDevice,
  type ProbeFilesystem,
  type ProbeErrorCode,
  type TrialRecord,
} from './probe/probe';
