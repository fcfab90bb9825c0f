// nunjucks, loaded on first use: a server whose pages and mails are never
// rendered (and `start --ephemeral`, `startEphemeral()`) starts without it.
// A synchronous require (nunjucks is CommonJS), so that rendering stays
// synchronous for its callers; the first render pays the load (~10 ms).

import { createRequire } from 'node:module';

type Nunjucks = typeof import('nunjucks');

const require = createRequire(import.meta.url);
let loaded: Nunjucks | null = null;

/** The nunjucks module (the same instance on every call). */
export function nunjucks(): Nunjucks {
  return (loaded ??= require('nunjucks') as Nunjucks);
}
