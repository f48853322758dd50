// The first open of a directory: PGlite copies a fresh cluster into it (and
// syncs nothing), then treats it as a database once PG_VERSION exists. untorn
// writes untorn.init (durably) before the copy and removes it once every file
// and directory of the copy is durable; a directory that still holds it was
// interrupted and is emptied, so that PGlite copies afresh.
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgValue } from '../errors';
import { fsyncPath, fsyncTree } from './durable';
import { INIT_FILE, JOURNAL_FILE, LOCK_FILE, UNTORN_FILES } from './names';

export type DataDirState = 'initializing' | 'existing' | 'adopted';

/**
 * Readies `dataDir` (locked by the caller) before the journal opens:
 * 'initializing' when PGlite will copy a cluster in, 'adopted' for a database
 * made without untorn (now made durable as it stands), else 'existing'.
 */
export function prepareDataDir(dataDir: string): DataDirState {
  const marker = path.join(dataDir, INIT_FILE);
  if (fs.existsSync(marker)) {
    for (const name of fs.readdirSync(dataDir)) {
      if (name !== LOCK_FILE && name !== INIT_FILE)
        fs.rmSync(path.join(dataDir, name), { recursive: true, force: true });
    }
    fsyncPath(dataDir);
    return 'initializing';
  }
  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if (fs.existsSync(path.join(dataDir, JOURNAL_FILE))) return 'existing';
    fsyncTree(dataDir, UNTORN_FILES);
    return 'adopted';
  }
  const strangers = fs.readdirSync(dataDir).filter((name) => !UNTORN_FILES.has(name));
  // The redo after an interrupted first open empties the directory: never one holding files of someone else's.
  if (strangers.length > 0)
    throw invalidArgValue('dataDir', dataDir, `holds files but no database (${strangers.slice(0, 3).join(', ')})`);
  fs.closeSync(fs.openSync(marker, 'w', 0o600));
  fsyncPath(marker);
  fsyncPath(dataDir);
  return 'initializing';
}

/** After the copy: every file and directory durable, then the marker gone (durably). */
export function completeFirstOpen(dataDir: string): void {
  fsyncTree(dataDir, UNTORN_FILES);
  fs.unlinkSync(path.join(dataDir, INIT_FILE));
  fsyncPath(dataDir);
}
