// The pages a bench writes: the same deterministic sequence for every
// strategy, in batches of distinct pages (a flush batch never holds a page
// twice, or writes in flight to it would race), each page stamped so the
// final files can be checked.

import type { Pattern } from './types';

// mulberry32: tiny, fast and good enough to spread page numbers.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Yields batches of page numbers in [0, pages); the same seed gives the same batches. */
export class PageSequence {
  readonly #pages: number;
  readonly #pattern: Pattern;
  readonly #random: () => number;
  #next = 0;

  constructor(pages: number, pattern: Pattern, seed: number) {
    this.#pages = pages;
    this.#pattern = pattern;
    this.#random = mulberry32(seed);
  }

  nextBatch(size: number): Uint32Array {
    const batch = new Uint32Array(size);
    if (this.#pattern === 'sequential') {
      for (let i = 0; i < size; i++) batch[i] = (this.#next + i) % this.#pages;
      this.#next = (this.#next + size) % this.#pages;
      return batch;
    }
    const seen = new Set<number>();
    for (let i = 0; i < size; i++) {
      let page: number;
      do page = Math.floor(this.#random() * this.#pages);
      while (seen.has(page));
      seen.add(page);
      batch[i] = page;
    }
    return batch;
  }
}

// A page carries (page number, write number) at its start and its end, so a
// page that is stale, misplaced or torn is told apart from the right one.
const STAMP_BYTES = 8;

export function stampPage(page: Buffer, pageNumber: number, writeNumber: number): void {
  page.writeUInt32LE(pageNumber, 0);
  page.writeUInt32LE(writeNumber, 4);
  page.writeUInt32LE(pageNumber, page.length - STAMP_BYTES);
  page.writeUInt32LE(writeNumber, page.length - 4);
}

/** The write number a page holds, or -1 when its stamps disagree with its place or each other. */
export function readStamp(page: Buffer, pageNumber: number): number {
  const head = page.readUInt32LE(4);
  const ok =
    page.readUInt32LE(0) === pageNumber &&
    page.readUInt32LE(page.length - STAMP_BYTES) === pageNumber &&
    page.readUInt32LE(page.length - 4) === head;
  return ok ? head : -1;
}
