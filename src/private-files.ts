// Files that hold secrets (the SQLite database with its password and token
// hashes, the signing key, a generated config with its shared secret) are
// created readable and writable by their owner only, whatever the umask.
// Files that exist already are the admin's: their mode is left alone.

import { closeSync, fchmodSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Creates `path` with mode 0600 and the given contents (empty by default),
 * and a missing parent directory with mode 0700. Returns false, writing
 * nothing, when the file exists already (also when another process created it
 * a moment before: the open is exclusive).
 */
export function createPrivateFile(path: string, contents = ''): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    // open's mode is narrowed by the umask (0o600 & ~umask): set it exactly.
    fchmodSync(fd, 0o600);
    if (contents) writeSync(fd, contents);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * The permission bits (e.g. 0o644) of a file that its group or other users
 * may read or write, or null when it is private or does not exist.
 */
export function openToOthers(path: string): number | null {
  try {
    const mode = statSync(path).mode & 0o777;
    return mode & 0o077 ? mode : null;
  } catch {
    return null;
  }
}
