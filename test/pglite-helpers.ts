// Shared by the PGlite tests: a template database (made once per filesystem
// by a real first open, then copied, because a PGlite first open takes
// seconds), the crash worker, and the check of a recovered directory
// (acknowledged transactions, the balance invariant, amcheck on every table
// and index).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { amcheck } from '@electric-sql/pglite/contrib/amcheck';
import { openPGlite } from '../dist/pglite/index.js';
import { amcheckAll } from './pglite-check.mjs';
import { type Fixture } from './helpers/filesystems';

export const ACCOUNTS = 20_000;
export const BALANCE = 1000;
export const WORKER = path.join(__dirname, 'pglite-worker.mjs');

/** The template of `fixture`: a closed database holding the workload's tables. Made on first use. */
export async function template(fixture: Fixture): Promise<string> {
  const dir = path.join(fixture.dir, 'pglite-template');
  if (fs.existsSync(path.join(dir, 'ready'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await openPGlite(dir);
  await db.exec(`
    CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, filler text NOT NULL);
    CREATE TABLE history (id int PRIMARY KEY, aid int NOT NULL, delta int NOT NULL, at timestamptz DEFAULT now());
    CREATE INDEX history_aid ON history (aid);
    INSERT INTO accounts SELECT g, ${BALANCE}, repeat('x', 84) FROM generate_series(1, ${ACCOUNTS}) g;
    CHECKPOINT;`);
  await db.close();
  // Beside the data directory's files, never in it: not one of PostgreSQL's or untorn's.
  fs.writeFileSync(path.join(dir, 'ready'), '');
  return dir;
}

/** A copy of the template at a fresh path in `fixture`. */
export async function copyOfTemplate(fixture: Fixture, name: string): Promise<string> {
  const from = await template(fixture);
  const to = path.join(fixture.dir, `${name}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`);
  fs.cpSync(from, to, { recursive: true, filter: (src) => path.basename(src) !== 'ready' });
  return to;
}

export interface WorkerRun {
  acked: number[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** The strace status=unfinished line of the killed call, when run under strace. */
  trace: string;
}

/**
 * Runs the worker on `dir` (optionally under strace with `straceArgs`),
 * killing it with SIGKILL once `killAfter` transactions were acknowledged.
 */
export function runWorker(
  dir: string,
  options: { mode?: 'untorn' | 'control'; count: number; every: number; killAfter?: number; strace?: string[] },
): Promise<WorkerRun> {
  const args = [WORKER, dir, options.mode ?? 'untorn', String(options.count), String(options.every)];
  const traceFile = `${dir}.strace`;
  const child = options.strace
    ? spawn('strace', ['-f', '-qq', '-o', traceFile, ...options.strace, process.execPath, ...args])
    : spawn(process.execPath, args);
  const acked: number[] = [];
  let out = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      const m = /^ack (\d+)$/.exec(line);
      if (!m) continue;
      acked.push(Number(m[1]));
      if (options.killAfter !== undefined && acked.length === options.killAfter) child.kill('SIGKILL');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let trace = '';
      if (options.strace) {
        trace = fs.existsSync(traceFile) ? fs.readFileSync(traceFile, 'utf8') : '';
        fs.rmSync(traceFile, { force: true });
      }
      resolve({ acked, code, signal, stderr, trace });
    });
  });
}

export interface Verdict {
  /** Acknowledged history ids not found. */
  missing: number[];
  balanceSum: number | null;
  /** amcheck findings and errors (checksum failures among them), one line each. */
  damage: string[];
  /** The open itself failed (recovery refused: a torn page during redo, say). */
  openError: string | null;
}

/** Opens `dir` with openPGlite (journal replay, then WAL redo) and checks it. */
export async function verify(dir: string, acked: number[]): Promise<Verdict> {
  let db;
  // PostgreSQL's own log: why a start failed (PGlite's error only says that it did).
  const log: string[] = [];
  const onStderr = (text: string) => (log.push(text), false);
  try {
    db = await openPGlite(dir, { extensions: { amcheck }, onStderr });
  } catch (err) {
    const why = log.filter((l) => /ERROR|FATAL|PANIC|WARNING/.test(l)).slice(-4);
    return {
      missing: [],
      balanceSum: null,
      damage: [],
      openError: [String((err as Error).message), ...why].join(' | '),
    };
  }
  const damage: string[] = [];
  const verdict: Verdict = { missing: [], balanceSum: null, damage, openError: null };
  try {
    damage.push(...(await amcheckAll(db)).damage);
    try {
      const ids = new Set((await db.query<{ id: number }>('SELECT id FROM history')).rows.map((r) => Number(r.id)));
      verdict.missing = acked.filter((id) => !ids.has(id));
      const sum = await db.query<{ s: string }>('SELECT sum(balance)::text AS s FROM accounts');
      verdict.balanceSum = Number(sum.rows[0].s);
    } catch (err) {
      damage.push(`reading the tables: ${(err as Error).message}`);
    }
  } finally {
    await db.close();
  }
  return verdict;
}
