// How PostgreSQL's file I/O reaches the disk under untorn. PGlite's Emscripten
// module has NODEFS, a filesystem of synchronous host calls (buffered); the
// data directory is mounted with it, and its operations are changed here, for
// this module instance only (each PGlite has its own NODEFS object):
//   - relation files get their own stream operations: reads, writes, sizes and
//     syncs through the journal (O_DIRECT, untorn pages); they are never
//     opened buffered as well;
//   - every other stream gets the fsync NODEFS lacks, and fdatasync (a no-op
//     in the Emscripten glue) is wrapped at the wasm import to reach both;
//   - untorn's own files are hidden from PostgreSQL.
import fs from 'node:fs';
import path from 'node:path';
import type { Journal, JournaledFile } from '../journal/journal';
import { isRelationFile, RELATION_PAGE_SIZE, UNTORN_FILES } from './names';

/* The parts of Emscripten's FS that are used here. */
export interface EmNode {
  name: string;
  mode: number;
  parent: EmNode;
  mount: { opts: { root: string } };
}
export interface EmStream {
  node: EmNode;
  flags: number;
  position: number;
  nfd?: number;
  shared: { refcount?: number };
  stream_ops: StreamOps;
}
type Attr = { size?: number; [k: string]: unknown };
interface Stat {
  size: number;
  [k: string]: unknown;
}
interface NodeOps {
  getattr(node: EmNode): Stat;
  setattr(node: EmNode, attr: Attr): void;
  unlink(parent: EmNode, name: string): void;
  rename(node: EmNode, dir: EmNode, name: string): void;
  readdir(node: EmNode): string[];
  mknod(parent: EmNode, name: string, mode: number, dev: number): EmNode;
  lookup(parent: EmNode, name: string): EmNode;
  [k: string]: unknown;
}
export interface StreamOps {
  open?(stream: EmStream): void;
  close?(stream: EmStream): void;
  dup?(stream: EmStream): void;
  read?(stream: EmStream, buffer: Uint8Array, offset: number, length: number, position: number): number;
  write?(stream: EmStream, buffer: Uint8Array, offset: number, length: number, position: number): number;
  llseek?(stream: EmStream, offset: number, whence: number): number;
  getattr?(stream: EmStream): Stat;
  setattr?(stream: EmStream, attr: Attr): void;
  fsync?(stream: EmStream): number;
  [k: string]: unknown;
}
export interface EmModule {
  FS: {
    ErrnoError: new (errno: number) => Error & { errno: number };
    getStream(fd: number): EmStream | null;
    isFile(mode: number): boolean;
    isDir(mode: number): boolean;
    mkdirTree(path: string): void;
    mount(type: unknown, opts: { root: string }, mountpoint: string): unknown;
    quit(): void;
  };
  NODEFS: {
    node_ops: NodeOps;
    stream_ops: StreamOps;
    createNode(parent: EmNode, name: string, mode: number, dev: number): EmNode;
  };
  callMain(args: string[]): number;
}

// Emscripten's errno numbers (its own table, not Linux's).
const EBADF = 8;
const EIO = 29;
const ENOENT = 44;
const EINVAL = 28;
// Emscripten's O_DSYNC; its O_SYNC includes it.
const O_DSYNC = 4096;

/** A kernel or untorn error as the Emscripten FS throws it. */
function errno(mod: EmModule, codes: Record<string, number>, err: unknown): Error & { errno: number } {
  if (err instanceof mod.FS.ErrnoError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  return new mod.FS.ErrnoError((code && codes[code]) || EIO);
}

/** The relation files open through the journal, by host path; a handle outlives its last stream until a commit. */
class Relations {
  #open = new Map<string, { file: JournaledFile; refs: number }>();

  constructor(readonly journal: Journal) {}

  acquire(host: string): JournaledFile {
    let held = this.#open.get(host);
    if (!held) {
      held = { file: this.journal.openFileSync(host, 'r+'), refs: 0 };
      this.#open.set(host, held);
    }
    held.refs++;
    return held.file;
  }

  /** Makes the file (O_DIRECT, as every open of it): it is never opened buffered, not even to create it. */
  create(host: string, mode: number): void {
    this.#open.set(host, { file: this.journal.openFileSync(host, 'wx+', mode), refs: 0 });
  }

  release(host: string): void {
    const held = this.#open.get(host);
    if (held) held.refs--;
  }

  /** The open handle of `host`: its size counts pages not yet committed. */
  peek(host: string): JournaledFile | undefined {
    return this.#open.get(host)?.file;
  }

  /** Commit; handles no stream uses any more go (their pages are in place now). */
  commit(): void {
    this.journal.commitSync();
    for (const [host, held] of this.#open) {
      if (held.refs > 0) continue;
      held.file.closeSync();
      this.#open.delete(host);
    }
  }

  /** Before a relation file is unlinked or renamed: its pages in place (the journal's rule), its handle gone. */
  forget(host: string): void {
    this.journal.commitSync();
    const held = this.#open.get(host);
    if (held) {
      held.file.closeSync();
      this.#open.delete(host);
    }
  }

  closeAll(): void {
    for (const held of this.#open.values()) held.file.closeSync();
    this.#open.clear();
  }
}

/** Writes any byte range of a relation file as whole pages: partial pages read, patched and written whole. */
function writeRange(file: JournaledFile, data: Uint8Array, position: number): void {
  const P = RELATION_PAGE_SIZE;
  let done = 0;
  while (done < data.length) {
    const at = position + done;
    const pageStart = at - (at % P);
    const n = Math.min(data.length - done, pageStart + P - at);
    if (n === P) {
      file.writePageSync(data.subarray(done, done + P), pageStart);
    } else {
      // PostgreSQL writes relation files in whole pages; anything else is
      // made one (a page past the end is zero-filled to the page boundary).
      const page = Buffer.alloc(P);
      file.readSync(page, pageStart);
      page.set(data.subarray(done, done + n), at - pageStart);
      file.writePageSync(page, pageStart);
    }
    done += n;
  }
}

export interface Routing {
  /** Commits the journal and closes every relation handle. */
  close(): void;
  /** Pages in place and durable; idle handles closed. */
  commit(): void;
  /** fdatasync of an Emscripten descriptor: 0 or a negative Emscripten errno. */
  datasync(fd: number): number;
}

/**
 * Changes `mod`'s NODEFS so that the mount at `root` goes through `journal`
 * for relation files and syncs for real everywhere. Call before the mount.
 */
export function route(mod: EmModule, root: string, journal: Journal | null, codes: Record<string, number>): Routing {
  const { FS, NODEFS } = mod;
  const node = { ...NODEFS.node_ops };
  const stream = { ...NODEFS.stream_ops };
  // No journal: relation files stay buffered NODEFS files (the tests' control; fsync is still real).
  const relations = journal ? new Relations(journal) : null;
  const ours = (n: EmNode) => n.mount?.opts?.root === root;

  /** The node's path inside the data directory, '/'-separated. */
  function relative(n: EmNode): string {
    const parts: string[] = [];
    for (let at = n; at.parent !== at; at = at.parent) parts.push(at.name);
    return parts.reverse().join('/');
  }
  const host = (rel: string) => path.join(root, rel);
  const relationOf = (n: EmNode) =>
    relations && ours(n) && FS.isFile(n.mode) && isRelationFile(relative(n)) ? relative(n) : null;
  const guard = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw errno(mod, codes, err);
    }
  };

  const relationOps: StreamOps = {
    open(s) {
      guard(() => relations!.acquire(host(relative(s.node))));
      s.shared.refcount = 1;
    },
    dup(s) {
      s.shared.refcount = (s.shared.refcount ?? 0) + 1;
    },
    close(s) {
      if (--s.shared.refcount! === 0) relations!.release(host(relative(s.node)));
    },
    read(s, buffer, offset, length, position) {
      const file = relations!.peek(host(relative(s.node)));
      if (!file) throw new FS.ErrnoError(EBADF);
      return guard(() => file.readSync(buffer.subarray(offset, offset + length), position));
    },
    write(s, buffer, offset, length, position) {
      const file = relations!.peek(host(relative(s.node)));
      if (!file) throw new FS.ErrnoError(EBADF);
      guard(() => {
        writeRange(file, buffer.subarray(offset, offset + length), position);
        if (s.flags & O_DSYNC) relations!.commit();
      });
      return length;
    },
    llseek(s, offset, whence) {
      let at = offset;
      if (whence === 1) at += s.position;
      else if (whence === 2) at += relations!.peek(host(relative(s.node)))?.size() ?? 0;
      if (at < 0) throw new FS.ErrnoError(EINVAL);
      return at;
    },
    getattr(s) {
      return NODEFS.node_ops.getattr(s.node);
    },
    setattr(s, attr) {
      NODEFS.node_ops.setattr(s.node, attr);
    },
    fsync() {
      guard(() => relations!.commit());
      return 0;
    },
  };

  NODEFS.stream_ops.open = (s) => {
    if (relationOf(s.node) !== null) {
      s.stream_ops = relationOps;
      return relationOps.open!(s);
    }
    return stream.open!(s);
  };
  // NODEFS has no fsync: PostgreSQL's fsync() of WAL, pg_control, SLRU
  // files and directories (opened read-only, as PostgreSQL does) was a no-op.
  NODEFS.stream_ops.fsync = (s) => {
    if (s.nfd !== undefined) guard(() => fs.fsyncSync(s.nfd!));
    return 0;
  };

  NODEFS.node_ops.getattr = (n) => {
    const stat = node.getattr(n);
    const rel = relationOf(n);
    const file = rel === null ? undefined : relations!.peek(host(rel));
    // Pages held by the journal count: PostgreSQL sizes relations by lseek and stat.
    if (file) stat.size = file.size();
    return stat;
  };
  NODEFS.node_ops.setattr = (n, attr) => {
    const rel = relationOf(n);
    if (rel !== null && attr.size !== undefined) {
      const size = attr.size;
      guard(() => {
        const file = relations!.acquire(host(rel));
        try {
          file.truncateSync(size);
        } finally {
          relations!.release(host(rel));
        }
      });
      const rest = { ...attr };
      delete rest.size;
      return node.setattr(n, rest);
    }
    return node.setattr(n, attr);
  };
  NODEFS.node_ops.mknod = (parent, name, mode, dev) => {
    const rel = ours(parent) ? [relative(parent), name].filter(Boolean).join('/') : '';
    if (!relations || !FS.isFile(mode) || !isRelationFile(rel)) return node.mknod(parent, name, mode, dev);
    guard(() => relations.create(host(rel), mode & 0o7777));
    return NODEFS.createNode(parent, name, mode, dev);
  };
  NODEFS.node_ops.unlink = (parent, name) => {
    const rel = ours(parent) ? [relative(parent), name].filter(Boolean).join('/') : '';
    if (relations && isRelationFile(rel)) guard(() => relations.forget(host(rel)));
    return node.unlink(parent, name);
  };
  NODEFS.node_ops.rename = (n, dir, name) => {
    if (ours(n)) {
      const from = relative(n);
      const to = [relative(dir), name].filter(Boolean).join('/');
      for (const rel of [from, to]) if (relations && isRelationFile(rel)) guard(() => relations.forget(host(rel)));
    }
    return node.rename(n, dir, name);
  };
  NODEFS.node_ops.readdir = (n) => {
    const names = node.readdir(n);
    return ours(n) && n.parent === n ? names.filter((name) => !UNTORN_FILES.has(name)) : names;
  };
  NODEFS.node_ops.lookup = (parent, name) => {
    if (ours(parent) && parent.parent === parent && UNTORN_FILES.has(name)) throw new FS.ErrnoError(ENOENT);
    return node.lookup(parent, name);
  };

  return {
    close: () => {
      try {
        relations?.commit();
      } finally {
        relations?.closeAll();
      }
    },
    commit: () => relations?.commit(),
    datasync: (fd) => {
      const s = FS.getStream(fd);
      try {
        if (s?.stream_ops === relationOps) relations!.commit();
        else if (s && s.nfd !== undefined && ours(s.node)) fs.fdatasyncSync(s.nfd);
        return 0;
      } catch (err) {
        return -errno(mod, codes, err).errno;
      }
    },
  };
}

/**
 * fdatasync never reaches an Emscripten filesystem: the glue's
 * __syscall_fdatasync only checks the descriptor. Wrapped at the wasm import
 * (keeping its .sig, which dynamic linking of extensions reads) to call
 * `datasync` once the descriptor checked out.
 */
export function wrapFdatasync(
  imports: Record<string, Record<string, unknown>>,
  datasync: (fd: number) => number,
): void {
  const env = imports.env;
  const original = env?.__syscall_fdatasync as ((fd: number) => number) & { sig?: string };
  if (typeof original !== 'function')
    throw new Error('untorn/pglite: this PGlite build has no __syscall_fdatasync import');
  env.__syscall_fdatasync = Object.assign((fd: number): number => original(fd) || datasync(fd), { sig: original.sig });
}
