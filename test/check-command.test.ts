// `untorn check` on real page files: exit 0 and the counts for a sound file,
// 1 and the corrupt pages for a damaged one, pages a writer's open would
// restore counted sound, one-line errors, exit 2 for bad usage.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { openPageFile } from '../dist/index.js';
import { describeFs, fixture, tempPath } from './helpers/filesystems';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');
const execFileAsync = promisify(execFile);

async function check(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, 'check', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const made: string[] = [];
afterEach(() => {
  for (const f of made.splice(0)) fs.rmSync(f, { force: true });
});

/** A 4 KiB page file with pages 0..9 written in two batches (5..9 last). */
async function pageFile(): Promise<string> {
  const file = tempPath(fixture('xfs4k'), 'check');
  made.push(file, `${file}.dblwr`);
  const f = await openPageFile(file, { pageSize: 4096 });
  const data = (page: number) => Buffer.alloc(f.payloadSize, page + 1);
  await f.writePages([0, 1, 2, 3, 4].map((page) => ({ page, data: data(page) })));
  await f.writePages([5, 6, 7, 8, 9].map((page) => ({ page, data: data(page) })));
  await f.close();
  return file;
}

function damage(file: string, page: number): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('torn'), 0, 4, (page + 1) * 4096 + 100);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

describeFs('untorn check', () => {
  it('a sound page file: exit 0, the counts, JSON on request', async () => {
    const file = await pageFile();
    const text = await check(file);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/: sound: 10 pages of 4 KiB: 10 ok, 0 never written, 0 corrupt\n/);
    const json = await check(file, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      path: file,
      pageSize: 4096,
      pages: 10,
      ok: 10,
      empty: 0,
      corrupt: [],
      sound: true,
      recovery: { pagesChecked: 5, pagesRestored: 0, batchesDiscarded: 0 },
    });
  });

  it('a damaged page without a copy: exit 1, the page and why; with a copy: what open would restore', async () => {
    const file = await pageFile();
    damage(file, 2);
    damage(file, 7);
    const text = await check(file);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('CORRUPT: 10 pages of 4 KiB: 9 ok, 0 never written, 1 corrupt');
    expect(text.stdout).toContain('  page 2: checksum mismatch (torn or damaged)');
    expect(text.stdout).toContain('open would restore 1 page from it');
    const json = JSON.parse((await check(file, '--json')).stdout);
    expect(json.corrupt).toEqual([{ page: 2, reason: 'checksum mismatch (torn or damaged)' }]);
    expect(json.recovery.pagesRestored).toBe(1);
    // check wrote nothing: a writer's open still finds page 7 to restore.
    const f = await openPageFile(file, { pageSize: 4096 });
    expect(f.recovery.pagesRestored).toBe(1);
    await f.close();
  });

  it('a file that is no page file, a missing one, a file open for writing: exit 1, one line', async () => {
    const junk = tempPath(fixture('xfs4k'), 'junk');
    made.push(junk);
    fs.writeFileSync(junk, Buffer.alloc(8192, 1));
    for (const [target, message] of [
      [junk, /is not a page file: no untorn file magic/],
      [`${junk}-missing`, /ENOENT: no such file or directory, open/],
    ] as const) {
      const r = await check(target);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const file = await pageFile();
    const writer = await openPageFile(file, { pageSize: 4096 });
    const locked = await check(file);
    await writer.close();
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/^untorn check: page file .* is open for writing elsewhere/);
  });

  it('bad usage: exit 2', async () => {
    expect((await check()).code).toBe(2);
    expect((await check('a', 'b')).code).toBe(2);
    const r = await check('--frobnicate', 'x');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--frobnicate'/);
  });
});
