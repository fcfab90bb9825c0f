// nunjucks, loaded on first use: a server whose pages and mails are never
// rendered (and `start --ephemeral`, `startEphemeral()`) starts without it;
// the first render pays the load (~10 ms).

import { lazyModule } from '../lazy-module.js';

/** The nunjucks module (the same instance on every call). */
export const nunjucks = lazyModule<typeof import('nunjucks')>('nunjucks');
