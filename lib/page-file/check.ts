// `untorn check` as a library function: every page of a page file checked,
// and what open would recover from its doublewrite file. Read-only: it takes
// the shared lock, so it does not run beside a writer, and changes nothing.
import { directIo } from '../page-io';
import { openPageFile, readHeader, type PageFileRecovery, type PageFileVerifyResult } from './page-file';
import { PageFileError } from '../errors';

export interface CheckReport extends PageFileVerifyResult {
  path: string;
  pageSize: number;
  /** What a writer's open would do: pagesRestored pages are served from their copy here. */
  recovery: PageFileRecovery;
  /** No page is corrupt (pages open would restore count as sound). */
  sound: boolean;
}

/** Checks the page file at `path`, whatever its page size (the header says). */
export async function checkPageFile(path: string, doublewritePath?: string): Promise<CheckReport> {
  const io = await directIo.open(path, false, 'no').async();
  let pageSize: number;
  try {
    const header = await readHeader(io);
    if (header.state !== 'ok') {
      throw new PageFileError(
        'ERR_PAGEFILE_FORMAT',
        `${path} is not a page file: ${header.state === 'empty' ? 'it has no header' : header.why}`,
        { path },
      );
    }
    pageSize = header.header.pageSize;
  } finally {
    await io.close().async();
  }
  const file = await openPageFile(path, { flags: 'r', pageSize, doublewritePath });
  try {
    const result = await file.verify();
    return { path, pageSize, ...result, recovery: { ...file.recovery }, sound: result.corrupt.length === 0 };
  } finally {
    await file.close();
  }
}
