// GET /_synapse/admin/v1/server_version: which server this is, for admin
// tools (synadm's `version`) that ask Synapse's way.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Gatehouse's version, from the package.json above this module (src/ in tests, dist/src/ when built). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}

/** `{"server_version": "Gatehouse 0.1.0"}`: Synapse's shape, with Gatehouse's name so that no tool mistakes it for a Synapse version. */
export function serverVersion(): { server_version: string } {
  version ??= `Gatehouse ${packageVersion()}`;
  return { server_version: version };
}

let version: string | undefined;
