// What open recovers from the doublewrite file: the last batch there, if it
// is complete (its checksummed header and every copy's own checksum, page
// number and sequence agree), and which home pages it must restore: those
// that are torn, empty, misplaced, or hold an older write than the copy.
import { allocAligned } from '../buffers';
import { batchAreaOffset, decodeBatchHeader, inspectPage, pageOffset, type PageState } from './format';
import type { PageIo } from './io';

/** The last batch of the doublewrite file. */
export interface BatchFound {
  /** The batch, when it is complete; null when there is none or it is not. */
  copies: { seq: bigint; pages: number[]; images: Buffer[] } | null;
  /** A batch was there but incomplete (a crash while it was written): nothing of it counts. */
  discarded: boolean;
  /** The highest write sequence the doublewrite file shows; new writes go above it. */
  seq: bigint;
}

const NONE: BatchFound = { copies: null, discarded: false, seq: 0n };

async function readAt(io: PageIo, bytes: number, position: number): Promise<Buffer> {
  const buffer = allocAligned(bytes);
  await io.read([{ buffer, position }]);
  return buffer;
}

/** Reads the batch area of the doublewrite file. */
export async function findBatch(dblwr: PageIo, fileId: Buffer, tag: bigint, pageSize: number): Promise<BatchFound> {
  const area = batchAreaOffset(pageSize);
  const size = await dblwr.size();
  if (size <= area) return NONE;
  let start = await readAt(dblwr, pageSize, area);
  let header = decodeBatchHeader(start, fileId, pageSize);
  if (header.state === 'needs') {
    // A page list longer than the file is a damaged count, not a batch.
    if (header.bytes > size - area) return { copies: null, discarded: true, seq: 0n };
    start = await readAt(dblwr, header.bytes, area);
    header = decodeBatchHeader(start, fileId, pageSize);
  }
  if (header.state === 'empty') return NONE;
  if (header.state !== 'ok') return { copies: null, discarded: true, seq: 0n };
  const { seq, pages } = header;
  const copiesAt = area + start.length;
  const all = await readAt(dblwr, pages.length * pageSize, copiesAt);
  const images = pages.map((_, i) => all.subarray(i * pageSize, (i + 1) * pageSize));
  const complete = images.every((image, i) => {
    const state = inspectPage(image, pages[i], tag);
    return state.state === 'ok' && state.seq === seq;
  });
  return complete ? { copies: { seq, pages, images }, discarded: false, seq } : { copies: null, discarded: true, seq };
}

/** Whether a home page must be replaced by its (valid) copy of sequence `seq`. */
export function needsRestore(home: PageState, seq: bigint): boolean {
  return home.state !== 'ok' || home.seq < seq;
}

/** The copies whose home pages need restoring, read from the data file. */
export async function pagesToRestore(
  data: PageIo,
  copies: NonNullable<BatchFound['copies']>,
  tag: bigint,
  pageSize: number,
): Promise<{ page: number; image: Buffer }[]> {
  const homes = allocAligned(copies.pages.length * pageSize);
  const views = copies.pages.map((_, i) => homes.subarray(i * pageSize, (i + 1) * pageSize));
  await data.read(copies.pages.map((page, i) => ({ buffer: views[i], position: pageOffset(page, pageSize) })));
  return copies.pages
    .map((page, i) => ({ page, image: copies.images[i], home: inspectPage(views[i], page, tag) }))
    .filter(({ home }) => needsRestore(home, copies.seq))
    .map(({ page, image }) => ({ page, image }));
}
