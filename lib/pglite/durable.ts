// fsync of files and directories by name, for what PostgreSQL does not sync
// itself: the fresh cluster the first open copies in.
import fs from 'node:fs';
import path from 'node:path';

/** fsync of a file or directory by name. */
export function fsyncPath(target: string): void {
  const fd = fs.openSync(target, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Every file and directory under `dir` durable, children before their
 * directory, `dir` last; names in `skip` (at the top level) left out.
 */
export function fsyncTree(dir: string, skip: ReadonlySet<string> = new Set()): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue;
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(child);
    else if (entry.isFile()) fsyncPath(child);
  }
  fsyncPath(dir);
}
