// The yaml package, loaded when a config file is read: `start --ephemeral`
// and startEphemeral() build their config from an object and start without
// it (~20 ms). A synchronous require (yaml's Node build is CommonJS), so
// config loading stays synchronous.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The yaml module (require caches it: the same instance on every call). */
export function yaml(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}
