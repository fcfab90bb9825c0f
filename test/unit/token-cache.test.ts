// TokenCache (issue 15) on its own: bounded (LRU), entries expire after the
// max age, invalidation by user and by token, the generation guard against a
// lookup that read the database before an invalidation, and off/on.

import { describe, expect, it } from 'vitest';
import { TokenCache } from '../../src/cache/token-cache.js';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import type { AccessTokenWithUser } from '../../src/repositories/tokens.js';

const row = (hash: string, user = '@u:test.local'): AccessTokenWithUser => ({
  id: 1,
  token_hash: hash,
  user_id: user,
  device_id: 'D',
  refresh_token_id: null,
  used: false,
  expires_ts: null,
  is_guest: false,
  is_admin: false,
  deactivated: false,
  approved: true,
  lock: null,
  suspension: null,
});

function cache(opts: { maxEntries?: number; maxAgeMs?: number; enabled?: boolean } = {}) {
  let now = 1_000_000;
  const c = new TokenCache({ maxEntries: opts.maxEntries ?? 10, maxAgeMs: opts.maxAgeMs ?? 5000, enabled: opts.enabled, clock: () => now });
  const put = (r: AccessTokenWithUser) => c.store(r, c.ticket(), now);
  return { c, put, advance: (ms: number) => (now += ms), now: () => now };
}

describe('TokenCache', () => {
  it('returns what was stored, and nothing for an unknown hash', () => {
    const { c, put } = cache();
    put(row('h1'));
    expect(c.get('h1')?.token_hash).toBe('h1');
    expect(c.get('h2')).toBeUndefined();
    expect(c.size).toBe(1);
  });

  it('is bounded: past max entries the least recently used goes', () => {
    const { c, put } = cache({ maxEntries: 3 });
    for (const h of ['a', 'b', 'c']) put(row(h));
    // A use makes "a" the most recent: "b" is now the oldest.
    expect(c.get('a')).toBeDefined();
    put(row('d'));
    expect(c.size).toBe(3);
    expect(c.get('b')).toBeUndefined();
    for (const h of ['a', 'c', 'd']) expect(c.get(h)).toBeDefined();
    for (let i = 0; i < 1000; i++) put(row(`x${i}`, `@u${i}:test.local`));
    expect(c.size).toBe(3);
  });

  it('an evicted or expired entry leaves no trace in the per-user index', () => {
    const { c, put } = cache({ maxEntries: 1 });
    put(row('a', '@a:test.local'));
    put(row('b', '@b:test.local'));
    // Invalidating @a must not touch @b (whose entry is the only one).
    c.invalidateUsers(['@a:test.local']);
    put(row('b', '@b:test.local'));
    expect(c.get('b')).toBeDefined();
  });

  it('trusts an entry for its max age only, counted from the read', () => {
    const { c, put, advance } = cache({ maxAgeMs: 5000 });
    put(row('h'));
    advance(4999);
    expect(c.get('h')).toBeDefined();
    advance(1);
    expect(c.get('h')).toBeUndefined();
    expect(c.size).toBe(0);
    // A read that started earlier counts from its start.
    const { c: c2, now } = cache({ maxAgeMs: 5000 });
    c2.store(row('h'), c2.ticket(), now() - 5000);
    expect(c2.get('h')).toBeUndefined();
  });

  it('invalidateUsers drops every token of those users, and only theirs', () => {
    const { c, put } = cache();
    put(row('a1', '@a:test.local'));
    put(row('a2', '@a:test.local'));
    put(row('b1', '@b:test.local'));
    put(row('c1', '@c:test.local'));
    c.invalidateUsers(['@a:test.local', '@c:test.local', '@nobody:test.local']);
    expect(c.get('a1')).toBeUndefined();
    expect(c.get('a2')).toBeUndefined();
    expect(c.get('c1')).toBeUndefined();
    expect(c.get('b1')).toBeDefined();
  });

  it('clear drops all', () => {
    const { c, put } = cache();
    put(row('a1', '@a:test.local'));
    put(row('a2', '@b:test.local'));
    c.clear();
    expect(c.get('a1')).toBeUndefined();
    expect(c.get('a2')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('a lookup that began before an invalidation does not store its (stale) row after it', () => {
    const { c, now } = cache();
    for (const invalidate of [
      () => c.invalidateUsers(['@someone-else:test.local']),
      () => c.clear(),
      () => {
        c.disable();
        c.enable();
      },
    ]) {
      const ticket = c.ticket();
      // ...the database is read here, and meanwhile a write invalidates...
      invalidate();
      c.store(row('stale'), ticket, now());
      expect(c.get('stale')).toBeUndefined();
      // A lookup that begins afterwards stores.
      c.store(row('fresh'), c.ticket(), now());
      expect(c.get('fresh')).toBeDefined();
      c.clear();
    }
  });

  it('off: stores nothing and finds nothing; on again, it starts empty', () => {
    const { c, put } = cache({ enabled: false });
    expect(c.enabled).toBe(false);
    put(row('h'));
    expect(c.get('h')).toBeUndefined();
    c.enable();
    expect(c.enabled).toBe(true);
    put(row('h'));
    expect(c.get('h')).toBeDefined();
    c.disable();
    expect(c.get('h')).toBeUndefined();
    c.enable();
    expect(c.get('h')).toBeUndefined();
  });

  it('max entries 0 or max age 0 turn it off for good (enable() does not turn it on)', () => {
    for (const opts of [{ maxEntries: 0 }, { maxAgeMs: 0 }]) {
      const { c, put } = cache(opts);
      expect(c.configured).toBe(false);
      c.enable();
      expect(c.enabled).toBe(false);
      put(row('h'));
      expect(c.get('h')).toBeUndefined();
      expect(c.size).toBe(0);
    }
  });

  it('storing a token again replaces its entry (one entry per token)', () => {
    const { c, put } = cache();
    put(row('h', '@a:test.local'));
    put({ ...row('h', '@a:test.local'), is_admin: true });
    expect(c.size).toBe(1);
    expect(c.get('h')?.is_admin).toBe(true);
    c.invalidateUsers(['@a:test.local']);
    expect(c.size).toBe(0);
  });
});

describe('TokenCache memory', () => {
  it('follows the tokens in use: entries unused for the max age go at the next store', () => {
    const { c, put, advance } = cache({ maxEntries: 1000, maxAgeMs: 5000 });
    for (let i = 0; i < 100; i++) put(row(`old${i}`, `@u${i}:test.local`));
    advance(3000);
    expect(c.get('old0')).toBeDefined();
    advance(2500);
    put(row('new'));
    // old0 was used 2.5 s ago (but read 5.5 s ago: expired on its next get); the 99 others went.
    expect(c.size).toBe(2);
    expect(c.get('old0')).toBeUndefined();
    expect(c.get('new')).toBeDefined();
    advance(5000);
    c.purgeExpired();
    expect(c.size).toBe(0);
  });
});

describe('caches config', () => {
  const build = (caches: unknown) => buildConfig({ server_name: 'example.org', caches }, '/tmp');
  const problems = (caches: unknown): string[] => {
    try {
      build(caches);
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
  };

  it('defaults to 100,000 entries trusted for 5 s', () => {
    expect(buildConfig({ server_name: 'example.org' }, '/tmp').config.caches).toEqual({ access_token_max_entries: 100_000, access_token_max_age: 5000 });
  });

  it('reads the keys, 0 included (off), and accepts Synapse\'s cache keys without a warning', () => {
    const { config, warnings } = build({ access_token_max_entries: 0, access_token_max_age: '30s', global_factor: 2, per_cache_factors: { a: 1 } });
    expect(config.caches).toEqual({ access_token_max_entries: 0, access_token_max_age: 30_000 });
    expect(warnings).toEqual([]);
  });

  it.each([
    [{ access_token_max_entries: -1 }, 'caches.access_token_max_entries'],
    [{ access_token_max_entries: 1.5 }, 'caches.access_token_max_entries'],
    [{ access_token_max_entries: '10' }, 'caches.access_token_max_entries'],
    [{ access_token_max_entries: 1e12 }, 'caches.access_token_max_entries'],
    [{ access_token_max_age: 'soon' }, 'caches.access_token_max_age'],
    [{ access_token_max_age: -5 }, 'caches.access_token_max_age'],
  ])('refuses %j, naming the key', (caches, key) => {
    const found = problems(caches);
    expect(found).toHaveLength(1);
    expect(found[0]!.startsWith(`${key}:`)).toBe(true);
  });

  it('warns about an unknown key in the section', () => {
    expect(build({ access_token_max_size: 5 }).warnings).toEqual(['unknown configuration key "caches.access_token_max_size" is ignored']);
  });
});
