// The double-write, in one place for page files and journals (after InnoDB's
// buf0dblwr.cc). A batch of page images goes (1) in one sequential write to
// the batch area of a doublewrite file, made durable there (fdatasync, also
// under O_DIRECT), then (2) in place, each target file made durable. Only
// then may the area take the next batch. After a crash, open finds the last
// batch (complete only when its header and every copy's CRC32C check out) and
// writes its copies in place again where the owner says a home needs it, then
// retires the area (a header with no entries) so that nothing is replayed
// twice. Written as procedures (lib/steps.ts): journals run them blocking and
// async, page files async.
import { allocAligned } from '../buffers';
import type { Create, PageIo, PageIoSystem } from '../page-io';
import { all, perform, type Procedure } from '../steps';
import {
  batchAreaOffset,
  batchHeaderBytes,
  copyMatches,
  crcOf,
  decodeBatchHeader,
  decodeHeader,
  encodeBatchHeader,
  encodeHeader,
  type BatchEntry,
  type BatchHeader,
  type BatchTarget,
  type FileHeader,
  type HeaderReading,
} from './format';

/** A copy's slot in the area's buffer, and the same bytes but its last 4 (what its seal's CRC covers). */
export interface Slot {
  image: Buffer;
  body: Buffer;
}

/** The batch area of one doublewrite file, and the aligned buffer its batches are built in. */
export class BatchArea {
  readonly buffer: Buffer;
  /** The slots after a header of a given size, made once per size (no views made per batch). */
  #slots = new Map<number, Slot[]>();

  constructor(
    readonly io: PageIo,
    readonly ownerId: Buffer,
    readonly pageSize: number,
    /** Bytes of the area: the largest batch, header included. */
    readonly areaBytes: number,
  ) {
    this.buffer = allocAligned(areaBytes);
  }

  /** Whether a batch of `count` copies to `targets` fits. */
  fits(count: number, targets: readonly BatchTarget[]): boolean {
    return batchHeaderBytes(count, targets, this.pageSize) + count * this.pageSize <= this.areaBytes;
  }

  /** Copy `i`'s slot in the buffer, for a batch whose header is `headerBytes` long. */
  slot(headerBytes: number, i: number): Buffer {
    return this.slots(headerBytes)[i].image;
  }

  /** Every slot of the buffer after a header of `headerBytes`. */
  slots(headerBytes: number): readonly Slot[] {
    let slots = this.#slots.get(headerBytes);
    if (slots === undefined) {
      const { pageSize } = this;
      const count = Math.floor((this.areaBytes - headerBytes) / pageSize);
      slots = Array.from({ length: count }, (_, i) => {
        const image = this.buffer.subarray(headerBytes + i * pageSize, headerBytes + (i + 1) * pageSize);
        return { image, body: image.subarray(0, pageSize - 4) };
      });
      this.#slots.set(headerBytes, slots);
    }
    return slots;
  }
}

/** A batch whose copies are in the area's slots, in the order of `writes`. */
export interface Batch {
  seq: bigint;
  targets: readonly BatchTarget[];
  /** The open file of each target. */
  files: readonly PageIo[];
  writes: readonly { target: number; position: number }[];
  headerBytes: number;
  /** Each copy's seal (format.ts copySeal) where the caller has it already; computed here otherwise. */
  seals?: readonly { crc: number; tail: number }[];
}

/** Where a failed writeThrough stopped: once `inPlace`, the area holds the only good copy of its pages. */
export interface Progress {
  inPlace: boolean;
}

/** In-place writes, one per target file, each with its fdatasync; together when async. */
function inPlace(
  files: readonly PageIo[],
  writes: readonly { target: number; position: number }[],
  images: (i: number) => Buffer,
) {
  const byTarget: { buffer: Buffer; position: number }[][] = files.map(() => []);
  for (let i = 0; i < writes.length; i++) {
    byTarget[writes[i].target].push({ buffer: images(i), position: writes[i].position });
  }
  return all(
    byTarget.flatMap((entries, target) => (entries.length > 0 ? [files[target].write(entries, false, true)] : [])),
  );
}

/** The write order of a double-write, for a batch already in the area's slots. */
export function* writeThrough(area: BatchArea, batch: Batch, progress: Progress): Procedure<void> {
  const { pageSize } = area;
  const slots = area.slots(batch.headerBytes);
  const { writes, seals } = batch;
  const entries: BatchEntry[] = new Array(writes.length);
  for (let i = 0; i < writes.length; i++) {
    const { image, body } = slots[i];
    const seal = seals?.[i];
    entries[i] = {
      target: writes[i].target,
      position: writes[i].position,
      crc: seal ? seal.crc : crcOf(body),
      tail: seal ? seal.tail : image.readUInt32LE(pageSize - 4),
    };
  }
  const header: BatchHeader = { seq: batch.seq, ownerId: area.ownerId, pageSize, targets: batch.targets, entries };
  encodeBatchHeader(area.buffer, header);
  const bytes = batch.headerBytes + writes.length * pageSize;
  yield* perform(
    area.io.write([{ buffer: area.buffer.subarray(0, bytes), position: batchAreaOffset(pageSize) }], false, true),
  );
  progress.inPlace = true;
  yield* perform(inPlace(batch.files, writes, (i) => slots[i].image));
}

/** Marks the area as holding nothing to replay (sequence `seq` carries on), durably. */
export function* retire(area: BatchArea, seq: bigint): Procedure<void> {
  const page = allocAligned(area.pageSize);
  encodeBatchHeader(page, { seq, ownerId: area.ownerId, pageSize: area.pageSize, targets: [], entries: [] });
  yield* perform(area.io.write([{ buffer: page, position: batchAreaOffset(area.pageSize) }], false, true));
}

/** The last batch of an area: complete (every copy as its header says), or not. */
export interface FoundBatch {
  /** The batch, when it is complete and has copies; null when there is none or it is incomplete. */
  batch: { header: BatchHeader; images: Buffer[] } | null;
  /** A batch was there but incomplete (a crash while it was written): nothing of it counts. */
  discarded: boolean;
  /** The highest sequence the area shows; new batches go above it. */
  seq: bigint;
}

function* readAt(io: PageIo, bytes: number, position: number): Procedure<Buffer> {
  const buffer = allocAligned(bytes);
  yield* perform(io.read([{ buffer, position }]));
  return buffer;
}

/** Reads the area's last batch. */
export function* findBatch(area: BatchArea): Procedure<FoundBatch> {
  const { io, pageSize } = area;
  const at = batchAreaOffset(pageSize);
  const size = yield* perform(io.size());
  const none: FoundBatch = { batch: null, discarded: false, seq: 0n };
  if (size <= at) return none;
  let start = yield* readAt(io, pageSize, at);
  let reading = decodeBatchHeader(start, area.ownerId, pageSize);
  if (reading.state === 'needs') {
    // A header longer than the file is a damaged length, not a batch.
    if (reading.bytes > size - at) return { ...none, discarded: true };
    start = yield* readAt(io, reading.bytes, at);
    reading = decodeBatchHeader(start, area.ownerId, pageSize);
  }
  if (reading.state === 'empty') return none;
  if (reading.state !== 'ok') return { ...none, discarded: true };
  const { header, bytes } = reading;
  if (header.entries.length === 0) return { ...none, seq: header.seq };
  const copies = yield* readAt(io, header.entries.length * pageSize, at + bytes);
  const images = header.entries.map((_, i) => copies.subarray(i * pageSize, (i + 1) * pageSize));
  const complete = images.every((image, i) => copyMatches(image, header.entries[i]));
  return complete
    ? { batch: { header, images }, discarded: false, seq: header.seq }
    : { batch: null, discarded: true, seq: header.seq };
}

/** A copy whose home must be written again. */
export interface Restore {
  target: number;
  position: number;
  image: Buffer;
}

/**
 * The copies whose homes need restoring: each home is read from its file
 * (`files[target]`, null where the target is gone) and kept when
 * `needsRestore(copy, home, position)` says so.
 */
export function* homesToRestore(
  batch: NonNullable<FoundBatch['batch']>,
  files: readonly (PageIo | null)[],
  needsRestore: (copy: Buffer, home: Buffer, position: number) => boolean,
): Procedure<Restore[]> {
  const { entries } = batch.header;
  const pageSize = batch.header.pageSize;
  const live = entries.flatMap((e, i) => (files[e.target] ? [{ ...e, image: batch.images[i] }] : []));
  const homes = allocAligned(Math.max(1, live.length) * pageSize);
  const views = live.map((_, i) => homes.subarray(i * pageSize, (i + 1) * pageSize));
  yield* perform(all(live.map((e, i) => files[e.target]!.read([{ buffer: views[i], position: e.position }]))));
  return live
    .filter((e, i) => needsRestore(e.image, views[i], e.position))
    .map(({ target, position, image }) => ({ target, position, image }));
}

/** Writes the restores in place, makes each file durable, then retires the area. */
export function* restore(area: BatchArea, files: readonly (PageIo | null)[], restores: Restore[], seq: bigint) {
  if (restores.length > 0) {
    yield* perform(inPlace(files as PageIo[], restores, (i) => restores[i].image));
  }
  yield* retire(area, seq);
}

/** What the first bytes of a file say about its header. */
export function* readFileHeader(io: PageIo): Procedure<HeaderReading> {
  return decodeHeader(yield* readAt(io, 65536, 0));
}

/** Makes a file anew: its header page, durable, and nothing after it. */
export function* writeFileHeader(io: PageIo, header: FileHeader, pageSize: number): Procedure<void> {
  const page = allocAligned(pageSize);
  encodeHeader(page, header);
  yield* perform(io.truncate(0));
  yield* perform(io.write([{ buffer: page, position: 0 }], false, true));
}

/** Makes the area's bytes exist (written zeros), so that batch writes are overwrites of written blocks. */
export function* allocateArea(area: BatchArea): Procedure<void> {
  const { io, pageSize } = area;
  const need = batchAreaOffset(pageSize) + area.areaBytes;
  const have = Math.ceil((yield* perform(io.size())) / pageSize) * pageSize;
  if (have < need) yield* perform(io.write([{ buffer: allocAligned(need - have), position: have }], false, true));
}

/**
 * Opens `path` for the flags of page files and journaled files: 'r' and 'r+'
 * need the file, 'w+' makes it if missing, 'wx+' makes it and it must not
 * exist; no flags: 'r+' when it exists, else made. `made`: this call made it.
 */
export function* openWithFlags(
  system: PageIoSystem,
  path: string,
  flags: 'r' | 'r+' | 'w+' | 'wx+' | undefined,
  mode?: number,
): Procedure<{ io: PageIo; made: boolean }> {
  const open = (write: boolean, create: Create) => perform(system.open(path, write, create, mode));
  if (flags === 'r') return { io: yield* open(false, 'no'), made: false };
  if (flags === 'r+') return { io: yield* open(true, 'no'), made: false };
  if (flags === 'w+' || flags === 'wx+') {
    return { io: yield* open(true, flags === 'w+' ? 'yes' : 'exclusive'), made: flags === 'wx+' };
  }
  try {
    return { io: yield* open(true, 'no'), made: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { io: yield* open(true, 'exclusive'), made: true };
  }
}
