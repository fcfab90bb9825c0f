// The package's entry point (what importing the package by its name gives):
// a homeserver inside the caller's process, for client and SDK tests.

export { type EphemeralOptions, type EphemeralServer, startEphemeral } from './ephemeral.js';
export { ConfigError } from './config/load.js';
export type { Config } from './config/types.js';
