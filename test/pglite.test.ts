// untorn/pglite on real filesystems with real PostgreSQL (PGlite 0.6): SQL
// round trips, close and reopen, the settings it promises (SHOW), the
// refusals, the lock, the first open (and its redo after an interruption),
// and, under strace, what reaches the kernel: relation files only ever opened
// O_DIRECT, an fdatasync per commit. Crashes: test/pglite-crash.test.ts.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from 'vitest';
import { openPGlite, UntornFS } from '../dist/pglite/index.js';
import { describeFs, fixture, tempPath } from './helpers/filesystems';
import { amcheck } from '@electric-sql/pglite/contrib/amcheck';
import { isRelationFile } from '../dist/pglite/names.js';
import { amcheckAll } from './pglite-check.mjs';
import { copyOfTemplate, WORKER } from './pglite-helpers';

const run = promisify(execFile);
const DIST = path.join(__dirname, '..', 'dist');

async function show(db: PGlite, name: string): Promise<string> {
  const r = await db.query<Record<string, string>>(`SHOW ${name}`);
  return r.rows[0][name];
}

describe('untorn/pglite without @electric-sql/pglite', () => {
  // A preload that makes the package unresolvable, as if it were not installed.
  const hide = `const M = require('module'); const r = M._resolveFilename;
    M._resolveFilename = function (req, ...rest) { if (req.startsWith('@electric-sql/pglite')) { const e = new Error("Cannot find module '" + req + "'"); e.code = 'MODULE_NOT_FOUND'; throw e; } return r.call(this, req, ...rest); };`;

  it('fails to import with one error naming the package; untorn itself never loads it', async () => {
    const script = `${hide}
      const untorn = require(${JSON.stringify(path.join(DIST, 'index.js'))});
      const loaded = Object.keys(require.cache).some((k) => k.includes('@electric-sql'));
      let error = null;
      try { require(${JSON.stringify(path.join(DIST, 'pglite', 'index.js'))}); } catch (e) { error = { code: e.code, message: e.message }; }
      console.log(JSON.stringify({ untorn: typeof untorn.openJournal, loaded, error }));`;
    const { stdout } = await run(process.execPath, ['-e', script]);
    const out = JSON.parse(stdout);
    expect(out.untorn).toBe('function');
    expect(out.loaded).toBe(false);
    expect(out.error.code).toBe('MODULE_NOT_FOUND');
    expect(out.error.message).toMatch(
      /^untorn\/pglite needs the package @electric-sql\/pglite .*npm install @electric-sql\/pglite$/,
    );
  });
});

describe('which files are relation files', () => {
  it.each([
    ['base/5/16384', true],
    ['base/5/16384_fsm', true],
    ['base/5/16384_vm', true],
    ['base/5/16384_init', true],
    ['base/5/16384.1', true],
    ['base/5/16384_vm.12', true],
    ['global/1262', true],
    ['global/pg_control', false],
    ['global/pg_filenode.map', false],
    ['base/5/pg_internal.init', false],
    ['base/5/PG_VERSION', false],
    ['base/pgsql_tmp/pgsql_tmp42.0', false],
    ['pg_wal/000000010000000000000001', false],
    ['pg_xact/0000', false],
    ['base/5/16384_xyz', false],
  ])('%s: %s', (rel, expected) => {
    expect(isRelationFile(rel)).toBe(expected);
  });
});

describe('openPGlite refusals (before anything is opened)', () => {
  const dir = '/nonexistent/untorn-pglite-refusals';
  it.each([
    [{ startParams: ['--single', '-F'] }, /-F/],
    [{ startParams: ['-c', 'fsync=off'] }, /fsync/],
    [{ startParams: ['-cfull_page_writes=on'] }, /full_page_writes/],
    [{ startParams: ['--full-page-writes=off'] }, /full_page_writes/],
    [{ postgresqlconf: 'work_mem = 8MB\nfsync = off' }, /fsync/],
    [{ fs: {} }, /options\.fs/],
    [{ dataDir: '/x' }, /options\.dataDir/],
    [{ untorn: { strategy: 'fast' } }, /options\.strategy/],
  ])('%j is ERR_INVALID_ARG_VALUE', async (options, message) => {
    await expect(openPGlite(dir, options as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message });
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describeFs('openPGlite on XFS', () => {
  it('round-trips SQL with fsync on and full_page_writes off, survives close and reopen (also as a bare UntornFS)', async () => {
    const dir = await copyOfTemplate(fixture('xfs4k'), 'roundtrip');
    const db = await openPGlite(dir);
    expect(db.untorn).toEqual({
      strategy: 'doublewrite',
      strategyReason: expect.any(String),
      fullPageWrites: false,
      journal: path.join(dir, 'untorn.journal'),
    });
    expect(await show(db, 'fsync')).toBe('on');
    expect(await show(db, 'full_page_writes')).toBe('off');
    expect(await show(db, 'data_checksums')).toBe('on');
    await db.exec(
      "CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) VALUES ('one'), ('two')",
    );
    await db.query('INSERT INTO notes (body) SELECT md5(g::text) FROM generate_series(1, 5000) g');
    // untorn's own files are not PostgreSQL's business.
    const listed = await db.query<{ f: string }>("SELECT pg_ls_dir('.') AS f");
    expect(listed.rows.map((r) => r.f)).not.toContain('untorn.journal');
    await db.close();

    // A second start, this time PGlite.create with UntornFS and PGlite's default start parameters (-F among them).
    const again = await PGlite.create({ fs: new UntornFS(dir) });
    expect(await show(again, 'fsync')).toBe('on');
    expect(await show(again, 'full_page_writes')).toBe('off');
    const r = await again.query<{ n: number; first: string }>(
      'SELECT count(*)::int AS n, (SELECT body FROM notes WHERE id = 1) AS first FROM notes',
    );
    expect(r.rows[0]).toEqual({ n: 5002, first: 'one' });
    await again.close();
  });

  it('adopts a database made without untorn (as by NodeFS: no journal)', async () => {
    const dir = await copyOfTemplate(fixture('xfs4k'), 'adopt');
    fs.rmSync(path.join(dir, 'untorn.journal'));
    fs.rmSync(path.join(dir, 'untorn.lock'));
    const db = await openPGlite(dir);
    try {
      expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts')).rows[0].n).toBe(20_000);
      expect(fs.existsSync(path.join(dir, 'untorn.journal'))).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('refuses a second open of an open directory, in this process and another, and frees it at close', async () => {
    const dir = await copyOfTemplate(fixture('xfs4k'), 'lock');
    const db = await openPGlite(dir);
    try {
      await expect(openPGlite(dir)).rejects.toMatchObject({
        code: 'ERR_PGLITE_LOCKED',
        name: 'PGliteError',
        path: dir,
      });
      expect(() => new UntornFS(dir)).toThrow(expect.objectContaining({ code: 'ERR_PGLITE_LOCKED' }));
      const script = `const { UntornFS } = require(${JSON.stringify(path.join(DIST, 'pglite', 'index.js'))});
        try { new UntornFS(${JSON.stringify(dir)}); console.log('opened'); } catch (e) { console.log(e.code); }`;
      const { stdout } = await run(process.execPath, ['-e', script]);
      expect(stdout.trim()).toBe('ERR_PGLITE_LOCKED');
    } finally {
      await db.close();
    }
    new UntornFS(dir).release();
  });

  it('sends every fdatasync and fsync to the kernel and opens relation files O_DIRECT only', async () => {
    const dir = await copyOfTemplate(fixture('xfs4k'), 'strace');
    const trace = `${dir}.strace`;
    await new Promise<void>((resolve, reject) => {
      const child = spawn('strace', [
        '-f',
        '-qq',
        '-y',
        '-o',
        trace,
        '-e',
        'trace=openat,fdatasync,fsync',
        process.execPath,
        WORKER,
        dir,
        'untorn',
        '30',
        '30',
      ]);
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))));
    });
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const relation = /<?"?[^"]*\/(?:base\/\d+|global)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?"/;
    const opens = lines.filter((l) => l.includes('openat(') && relation.test(l) && !l.includes('ENOENT'));
    expect(opens.length).toBeGreaterThan(5);
    expect(opens.filter((l) => !l.includes('O_DIRECT'))).toEqual([]);
    // WAL: one fdatasync per commit at least (30 transactions); pg_control and directories (pg_xact here): fsync.
    const walSyncs = lines.filter((l) => /fdatasync\(\d+<[^>]*\/pg_wal\//.test(l));
    expect(walSyncs.length).toBeGreaterThanOrEqual(30);
    expect(lines.some((l) => /fsync\(\d+<[^>]*\/global\/pg_control>/.test(l))).toBe(true);
    expect(lines.some((l) => /fsync\(\d+<[^>]*\/pg_xact>/.test(l))).toBe(true);
    // Relation files at the checkpoint: the journal's batch, then the files in place.
    expect(lines.some((l) => /fdatasync\(\d+<[^>]*\/untorn\.journal>/.test(l))).toBe(true);
    expect(lines.some((l) => /fdatasync\(\d+<[^>]*\/base\/\d+\/\d+>/.test(l))).toBe(true);
    fs.rmSync(trace);
  });
});

describeFs('openPGlite on ext4', () => {
  it('redoes an interrupted first open, with full_page_writes on when asked; DDL that truncates, unlinks and copies relation files', async () => {
    const dir = tempPath(fixture('ext4'), 'pgdata');
    // What a crash during the first open's copy leaves: the marker, part of a cluster.
    fs.mkdirSync(path.join(dir, 'base', '1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'untorn.init'), '');
    fs.writeFileSync(path.join(dir, 'PG_VERSION'), '18\n');
    fs.writeFileSync(path.join(dir, 'base', '1', '1259'), Buffer.alloc(4096, 7));
    const db = await openPGlite(dir, { untorn: { fullPageWrites: true } });
    try {
      expect(db.untorn.fullPageWrites).toBe(true);
      expect(await show(db, 'full_page_writes')).toBe('on');
      expect(await show(db, 'fsync')).toBe('on');
      expect((await db.query<{ x: number }>('SELECT 1 + 1 AS x')).rows[0].x).toBe(2);
      expect(fs.existsSync(path.join(dir, 'untorn.init'))).toBe(false);
      expect(fs.statSync(path.join(dir, 'base', '1', '1259')).size % 8192).toBe(0);
      // Relation files truncated (VACUUM), unlinked (DROP), rewritten (VACUUM FULL), copied and removed (databases).
      await db.exec(`CREATE TABLE big (id int PRIMARY KEY, v text);
        INSERT INTO big SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g; DELETE FROM big WHERE id > 100`);
      await db.exec('VACUUM big');
      await db.exec('CHECKPOINT');
      await db.exec('CREATE TABLE gone (id int); INSERT INTO gone SELECT generate_series(1, 1000); DROP TABLE gone');
      await db.exec('TRUNCATE big; INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 500) g');
      await db.exec('VACUUM FULL big');
      await db.exec('CREATE DATABASE other');
      await db.exec('CHECKPOINT');
      await db.exec('DROP DATABASE other');
    } finally {
      await db.close();
    }
    const again = await openPGlite(dir, { untorn: { fullPageWrites: true }, extensions: { amcheck } });
    try {
      expect((await again.query<{ n: number }>('SELECT count(*)::int AS n FROM big')).rows[0].n).toBe(500);
      expect((await amcheckAll(again)).damage).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('refuses a directory that holds files but no database', async () => {
    const dir = tempPath(fixture('ext4'), 'strangers');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    await expect(openPGlite(dir)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: /notes\.txt/ });
    expect(fs.readdirSync(dir).sort()).toEqual(['notes.txt', 'untorn.lock']);
  });
});

describe('docs/api.md', () => {
  it('mentions every untorn/pglite export', async () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'api.md'), 'utf8');
    const index = fs.readFileSync(path.join(__dirname, '..', 'lib', 'pglite', 'index.ts'), 'utf8');
    const exported = [
      ...new Set(
        [...index.matchAll(/export \{([^}]*)\}/g)].flatMap((m) =>
          m[1].split(',').map((n) => n.replace(/^\s*type\s+/, '').trim()),
        ),
      ),
    ];
    expect(exported).toContain('openPGlite');
    expect(exported.filter((name) => name && !doc.includes(`\`${name}\``))).toEqual([]);
  });
});
