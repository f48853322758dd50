// UntornFS: a PGlite Filesystem, modelled on PGlite's own NodeFS (which
// mounts Emscripten's NODEFS at PGDATA), with the I/O changed by
// lib/pglite/routing.ts, the directory locked (lib/pglite/lock.ts), the first
// open made durable (lib/pglite/first-open.ts) and PostgreSQL started with
// fsync on and full_page_writes as asked.
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { EmscriptenBuiltinFilesystem, ERRNO_CODES } from '@electric-sql/pglite/basefs';
import { invalidArgType } from '../errors';
import { openJournalSync, type Journal, type JournalStrategy } from '../journal/journal';
import { validateOneOf, validatePath } from '../validate';
import { completeFirstOpen, prepareDataDir, type DataDirState } from './first-open';
import { fsyncPath } from './durable';
import { DataDirLock } from './lock';
import { JOURNAL_FILE, RELATION_PAGE_SIZE } from './names';
import { checkStartParams } from './params';
import { route, wrapFdatasync, type EmModule, type Routing } from './routing';

/** Where PGlite's Emscripten filesystem has the data directory (PGlite's PGDATA). */
const PGDATA = '/pglite/data';

export interface UntornFSOptions {
  /** Default 'auto': 'atomic' where 8 KiB pages take the hardware path, else 'doublewrite'. */
  strategy?: 'auto' | JournalStrategy;
  /** Default false: pages are untorn, so PostgreSQL's full-page images are not needed. */
  fullPageWrites?: boolean;
}

/** What `db.untorn` (and `UntornFS.untorn`) says. */
export interface UntornInfo {
  strategy: JournalStrategy;
  strategyReason: string;
  fullPageWrites: boolean;
  /** The journal's path; null where pages go straight to RWF_ATOMIC. */
  journal: string | null;
}

function validateOptions(options: unknown): Required<UntornFSOptions> {
  if (options === undefined) return { strategy: 'auto', fullPageWrites: false };
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  const o = options as Record<string, unknown>;
  const strategy = o.strategy ?? 'auto';
  validateOneOf('options.strategy', strategy, ['auto', 'atomic', 'doublewrite'] as const);
  const fullPageWrites = o.fullPageWrites ?? false;
  if (typeof fullPageWrites !== 'boolean')
    throw invalidArgType('options.fullPageWrites', 'of type boolean', fullPageWrites);
  return { strategy, fullPageWrites };
}

type Imports = Record<string, Record<string, unknown>>;
/** PGlite's Emscripten options (its PostgresMod type is not exported by name). */
type EmscriptenOptions = Parameters<EmscriptenBuiltinFilesystem['init']>[1];
type Instantiate = (imports: Imports, done: (...args: unknown[]) => void) => unknown;

export class UntornFS extends EmscriptenBuiltinFilesystem {
  readonly untorn: UntornInfo;
  readonly #root: string;
  readonly #fullPageWrites: boolean;
  #lock: DataDirLock | null;
  #journal: Journal | null;
  #routing: Routing | null = null;
  #state: DataDirState;

  /** Locks `dataDir` (made if missing), readies it and opens its journal (replaying what a crash left). */
  constructor(dataDir: string, options?: UntornFSOptions, internal?: { unjournaled?: boolean }) {
    validatePath(dataDir, 'dataDir');
    const settings = validateOptions(options);
    super(dataDir);
    this.#root = path.resolve(dataDir);
    if (!fs.existsSync(this.#root)) {
      fs.mkdirSync(this.#root, { recursive: true, mode: 0o700 });
      fsyncPath(path.dirname(this.#root));
    }
    this.#fullPageWrites = settings.fullPageWrites;
    this.#lock = new DataDirLock(this.#root);
    try {
      this.#state = prepareDataDir(this.#root);
      // @internal The tests' control: relation files written straight (buffered), no journal.
      this.#journal = internal?.unjournaled
        ? null
        : openJournalSync(path.join(this.#root, JOURNAL_FILE), {
            pageSize: RELATION_PAGE_SIZE,
            strategy: settings.strategy,
            directory: this.#root,
          });
    } catch (err) {
      this.#lock.release();
      throw err;
    }
    const journal = this.#journal;
    this.untorn = Object.freeze({
      strategy: journal?.strategy ?? 'doublewrite',
      strategyReason:
        journal?.strategyReason ?? 'no journal: relation pages are written straight to their files (test control)',
      fullPageWrites: settings.fullPageWrites,
      journal: journal?.strategy === 'doublewrite' ? journal.path : null,
    });
  }

  override async init(pg: PGlite, options: EmscriptenOptions): Promise<{ emscriptenOpts: EmscriptenOptions }> {
    const emscriptenOptions = options as Record<string, unknown>;
    this.pg = pg;
    const instantiate = emscriptenOptions.instantiateWasm as Instantiate;
    const preRun = (emscriptenOptions.preRun as unknown[] | undefined) ?? [];
    const emscriptenOpts = {
      ...emscriptenOptions,
      instantiateWasm: (imports: Imports, done: (...args: unknown[]) => void) => {
        wrapFdatasync(imports, (fd) => this.#routing?.datasync(fd) ?? 0);
        return instantiate(imports, done);
      },
      preRun: [
        ...preRun,
        (mod: EmModule) => {
          this.#routing = route(mod, this.#root, this.#journal, ERRNO_CODES as Record<string, number>);
          this.#guardStart(mod);
          mod.FS.mkdirTree(PGDATA);
          mod.FS.mount(mod.NODEFS, { root: this.#root }, PGDATA);
        },
      ],
    };
    return { emscriptenOpts: emscriptenOpts as unknown as EmscriptenOptions };
  }

  /**
   * PostgreSQL's start: PGlite's default parameters lose their -F; a list
   * the caller gave is checked (no -F, fsync, full_page_writes); then
   * full_page_writes as asked.
   */
  #guardStart(mod: EmModule): void {
    const callMain = mod.callMain.bind(mod);
    mod.callMain = (args: string[]) => {
      const end = args.indexOf('-D');
      if (!args.includes('--single') || end < 0) return callMain(args);
      let params = args.slice(0, end);
      const defaults = PGlite.defaultStartParams;
      if (defaults.every((p, i) => params[i] === p)) params = params.filter((p) => p !== '-F');
      else checkStartParams(params, 'startParams');
      const fpw = `full_page_writes=${this.#fullPageWrites ? 'on' : 'off'}`;
      return callMain([...params, '-c', fpw, ...args.slice(end)]);
    };
  }

  /** Called by PGlite after each query, and once after the first open's copy: that one is made durable here. */
  override async syncToFs(): Promise<void> {
    if (this.#state !== 'initializing' || this.#routing === null) return;
    this.#routing.commit();
    completeFirstOpen(this.#root);
    this.#state = 'existing';
  }

  /** After PostgreSQL shut down: every stream closed, the journal committed and closed, the lock released. */
  override async closeFs(): Promise<void> {
    try {
      (this.pg?.Module as unknown as EmModule | undefined)?.FS.quit();
    } finally {
      this.release();
    }
  }

  /** @internal Commits and closes the journal and releases the lock (closeFs, or a PGlite that failed to start). */
  release(): void {
    if (this.#lock === null) return;
    try {
      if (this.#routing) this.#routing.close();
      this.#journal?.closeSync();
    } finally {
      this.#lock.release();
      this.#lock = null;
    }
  }
}
