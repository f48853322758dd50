// One opener per data directory: an OFD lock on untorn.lock inside it. The
// kernel drops the lock with the last descriptor, so a killed process leaves
// nothing that blocks the next open.
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { binding } from '../binding';
import { check, PGliteError } from '../errors';
import { fsyncPath } from './durable';
import { LOCK_FILE } from './names';

export class DataDirLock {
  #fd: number;

  /** Takes the lock, or throws ERR_PGLITE_LOCKED. */
  constructor(readonly dataDir: string) {
    const file = path.join(dataDir, LOCK_FILE);
    const made = !fs.existsSync(file);
    this.#fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    const r = binding.lockFile(this.#fd, 2);
    if (r === -constants.errno.EAGAIN) {
      fs.closeSync(this.#fd);
      throw new PGliteError(
        'ERR_PGLITE_LOCKED',
        `PGlite data directory ${dataDir} is open elsewhere (this process or another)`,
        { path: dataDir },
      );
    }
    try {
      check(r, 'fcntl', file);
      if (made) fsyncPath(dataDir);
    } catch (err) {
      fs.closeSync(this.#fd);
      throw err;
    }
  }

  release(): void {
    if (this.#fd < 0) return;
    binding.lockFile(this.#fd, 0);
    fs.closeSync(this.#fd);
    this.#fd = -1;
  }
}
