// The yaml package, loaded when a config file is read: `start --ephemeral`
// and startEphemeral() build their config from an object and start without
// it (~20 ms).

import { lazyModule } from '../lazy-module.js';

/** The yaml module (the same instance on every call). */
export const yaml = lazyModule<typeof import('yaml')>('yaml');
