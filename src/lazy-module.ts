// Packages a start does not need (templates, YAML, mail, signing), loaded on
// their first use instead: `start --ephemeral` and `startEphemeral()` start
// faster and smaller without them (issue 15, docs/benchmarks.md). A
// synchronous require (these are CommonJS), so that their callers stay
// synchronous; the first call pays the load.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** An accessor that loads CommonJS package `name` on its first call and returns the same module on every call. */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
