// Which strategy a page file uses, and the sentence that says why. 'auto'
// takes atomic only where the page size takes the hardware path (what
// `untorn probe` calls hardware): this project measured XFS's software
// copy-on-write path slower than double-write.
import { AtomicWriteError } from '../errors';
import { formatBytes, formatRange } from '../format';
import type { StackFacts } from '../page-io';
import { atomicPathFor, atomicPaths, type AtomicPath, type AtomicPaths } from '../stack';

export type PageFileStrategy = 'atomic' | 'doublewrite' | 'unprotected';
export type StrategyOption = PageFileStrategy | 'auto';

// Every limit named here comes from atomicPaths (lib/stack.ts), the one place
// that splits statx's range between the device and XFS's software path: the
// device's own sysfs limit is not what a file on it gets (ext4 with 4 KiB
// blocks stays at one block on a 16 KiB device).
function facts(path: AtomicPath, paths: AtomicPaths, s: StackFacts, pageSize: number): string {
  const size = formatBytes(pageSize);
  const fs = s.fsType ?? 'this filesystem';
  const device = s.device ? `on ${s.device.device}` : 'with no block device under it';
  if (path === 'hardware')
    return `${size} atomic writes take the hardware path here (${fs} ${device}, up to ${formatBytes(paths.hardwareMax)})`;
  if (path === 'software') {
    const hardware =
      paths.hardwareMax > 0
        ? `hardware atomic writes ${device} cover ${formatRange(paths.hardwareMin, paths.hardwareMax)}`
        : `no hardware atomic writes ${device}`;
    return `${size} atomic writes take the XFS software (copy-on-write) path here (${hardware})`;
  }
  if (!s.info.supported) return `${fs} ${device} cannot write atomically here (statx reports no atomic write support)`;
  return `${fs} cannot write ${size} atomically here (its atomic writes are ${formatBytes(s.info.unitMin)} to ${formatBytes(s.info.unitMax)})`;
}

/** The strategy in use and why; ERR_ATOMIC_UNSUPPORTED where 'atomic' is asked for and cannot be had. */
export function chooseStrategy(
  requested: StrategyOption,
  stack: StackFacts,
  pageSize: number,
  file: string,
  /** What `file` is, for the error message: 'page file' or 'journal'. */
  kind = 'page file',
): { strategy: PageFileStrategy; reason: string } {
  const paths = atomicPaths(stack.fsType, stack.info, stack.device);
  const path = atomicPathFor(paths, pageSize);
  const why = facts(path, paths, stack, pageSize);
  switch (requested) {
    case 'atomic':
      if (path === 'none') {
        const { info } = stack;
        throw new AtomicWriteError(
          'ERR_ATOMIC_UNSUPPORTED',
          `${kind} ${file}: strategy 'atomic' needs ${formatBytes(pageSize)} atomic writes: ${why}`,
          {
            path: file,
            length: pageSize,
            position: 0,
            unitMin: info.unitMin,
            unitMax: info.unitMax,
            dioMemAlign: info.dioMemAlign,
            dioOffsetAlign: info.dioOffsetAlign,
          },
        );
      }
      return { strategy: 'atomic', reason: `strategy 'atomic' as asked: ${why}; each page is one RWF_ATOMIC write` };
    case 'doublewrite':
      return {
        strategy: 'doublewrite',
        reason: `strategy 'doublewrite' as asked: ${why}; each batch goes to the doublewrite file first`,
      };
    case 'unprotected':
      return {
        strategy: 'unprotected',
        reason: `strategy 'unprotected' as asked: pages are written in place only; a torn page is detected by its checksum, not prevented (${why})`,
      };
    case 'auto':
      return path === 'hardware'
        ? { strategy: 'atomic', reason: `${why}: each page is one RWF_ATOMIC write` }
        : path === 'software'
          ? {
              strategy: 'doublewrite',
              reason: `${why}, which untorn measured slower than double-write: pages are double-written`,
            }
          : { strategy: 'doublewrite', reason: `${why}: pages are double-written` };
  }
}
