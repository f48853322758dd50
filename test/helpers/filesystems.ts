// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the ProvidedContext declaration lives there
/// <reference path="../setup/filesystems.ts" />
// Real-filesystem fixtures for tests. The filesystems themselves are made
// once per run by the globalSetup module test/setup/filesystems.ts; this
// module is what test files import.
//
//   import { describeFs, fixture, tempPath } from './helpers/filesystems'
//   describeFs('atomic writes on XFS', () => {
//     it('writes', () => { const p = tempPath(fixture('xfs4k')); ... })
//   })
//
// Touch fixtures only inside `it`/hooks, not in the describe body itself:
// when the filesystems are unavailable the body still runs (to list the
// skipped tests) and there are no fixtures then.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, inject } from 'vitest';

export type FsType = 'xfs' | 'ext4' | 'tmpfs';

export interface Fixture {
  /** Fixture key: 'xfs4k' | 'xfs16k' | 'ext4' | 'tmpfs'. */
  name: FixtureName;
  type: FsType;
  /** Mount point; tests create their files in here. */
  dir: string;
  /** Backing image file (sparse), or null for tmpfs. */
  image: string | null;
  /** Loop device, e.g. /dev/loop3, or null for tmpfs. */
  device: string | null;
}

export type FixtureName = 'xfs4k' | 'xfs16k' | 'ext4' | 'tmpfs';

export type Filesystems =
  { ok: true; xfs4k: Fixture; xfs16k: Fixture; ext4: Fixture; tmpfs: Fixture } | { ok: false; reason: string };

export const filesystems: Filesystems = inject('filesystems');

let skipNoticePrinted = false;

/**
 * A `describe` for tests that need the real filesystems. When they could not
 * be set up (not root, no mkfs.xfs, ...) the suite is skipped and one line
 * saying why goes to stderr (once per test file).
 */
export function describeFs(name: string, fn: () => void): void {
  if (filesystems.ok) {
    describe(name, fn);
    return;
  }
  if (!skipNoticePrinted) {
    skipNoticePrinted = true;
    process.stderr.write(`untorn: skipping real-filesystem tests: ${filesystems.reason}\n`);
  }
  describe.skipIf(true)(name, () => {
    // Still collect the tests so they are reported as skipped, but a body
    // that reaches for a fixture at collection time must not fail the file.
    try {
      fn();
    } catch {
      // ignored: the whole suite is skipped anyway
    }
  });
}

/** The named fixture; throws if the filesystems are unavailable. */
export function fixture(name: FixtureName): Fixture {
  if (!filesystems.ok) throw new Error(`untorn: real filesystems unavailable: ${filesystems.reason}`);
  return filesystems[name];
}

let counter = 0;

/** A fresh, unique path inside fixture.dir. The file is not created. */
export function tempPath(fixture: Fixture, name = 'f'): string {
  counter += 1;
  return path.join(fixture.dir, `${name}-${process.pid}-${counter}-${randomBytes(4).toString('hex')}`);
}
