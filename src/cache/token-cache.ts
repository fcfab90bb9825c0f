// The in-process access-token cache (issue 15): token hash → the row the
// signed-in hot path reads (the token and the facts about its user), as
// Synapse caches its token lookup. Process state, not SQL: the row's state
// (expiry, lock and suspension end times) is still judged against the clock on
// every request, so a cached row expires and lifts itself as a fresh one does.
//
// Correctness rests on invalidation (SessionHandler.invalidateUsers is the one
// choke point for writes, PgNotifier brings other processes' writes) and on two
// guards: a generation counter, so that a lookup that read the database before
// an invalidation never stores its stale row after it, and a max age, the
// bound for writers that cannot announce their change (the CLI on SQLite, SQL
// typed by hand).

import type { AccessTokenWithUser } from '../repositories/tokens.js';

export interface TokenCacheOptions {
  /** Most entries kept; the least recently used goes first. 0 turns the cache off. */
  maxEntries: number;
  /** Milliseconds an entry is trusted after it was read from the database. 0 turns the cache off. */
  maxAgeMs: number;
  /** Whether the cache starts on (false: off until `enable()`, e.g. until the PostgreSQL listener listens). */
  enabled?: boolean;
  clock?: () => number;
}

interface Entry {
  row: AccessTokenWithUser;
  /** When the row was read from the database (ms since the epoch). */
  readAt: number;
  /** When it was last served (ms): the order of `entries`, so the oldest uses come first. */
  usedAt: number;
}

export class TokenCache {
  /** Insertion order is recency order: a hit moves its entry to the end, eviction takes the first. */
  private readonly entries = new Map<string, Entry>();
  /** user_id → the hashes of that user's cached tokens. */
  private readonly byUser = new Map<string, Set<string>>();
  private generation = 0;
  private on: boolean;
  private readonly clock: () => number;
  readonly maxEntries: number;
  readonly maxAgeMs: number;

  constructor(opts: TokenCacheOptions) {
    this.maxEntries = Math.max(0, Math.floor(opts.maxEntries));
    this.maxAgeMs = Math.max(0, opts.maxAgeMs);
    this.clock = opts.clock ?? Date.now;
    this.on = (opts.enabled ?? true) && this.configured;
  }

  /** Whether the config allows caching at all. */
  get configured(): boolean {
    return this.maxEntries > 0 && this.maxAgeMs > 0;
  }

  get enabled(): boolean {
    return this.on;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached row for `tokenHash`, if any and still young enough; counts as a use for the LRU order. */
  get(tokenHash: string): AccessTokenWithUser | undefined {
    if (!this.on) return undefined;
    const entry = this.entries.get(tokenHash);
    if (!entry) return undefined;
    const now = this.clock();
    if (now - entry.readAt >= this.maxAgeMs) {
      this.remove(tokenHash, entry.row.user_id);
      return undefined;
    }
    entry.usedAt = now;
    this.entries.delete(tokenHash);
    this.entries.set(tokenHash, entry);
    return entry.row;
  }

  /**
   * Taken before the database is read; `store` keeps the row only if no
   * invalidation (nor a switch off and on) happened since, as the row may then be stale.
   */
  ticket(): number {
    return this.generation;
  }

  /**
   * Keeps `row`, read from the database after `ticket()` gave `ticket` at
   * `readAt` (ms; the read's start: the max age counts from then).
   */
  store(row: AccessTokenWithUser, ticket: number, readAt: number): void {
    if (!this.on || ticket !== this.generation) return;
    const hash = row.token_hash;
    const old = this.entries.get(hash);
    if (old) this.remove(hash, old.row.user_id);
    this.purgeExpired();
    this.entries.set(hash, { row, readAt, usedAt: this.clock() });
    let hashes = this.byUser.get(row.user_id);
    if (!hashes) this.byUser.set(row.user_id, (hashes = new Set()));
    hashes.add(hash);
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.remove(oldest, entry.row.user_id);
    }
  }

  /**
   * Drops entries past their max age from the least recently used end, so that
   * memory follows the tokens in use rather than `maxEntries` (an entry unused
   * for the max age was read longer ago than that). Called on each store and by
   * the token sweep.
   */
  purgeExpired(): void {
    const before = this.clock() - this.maxAgeMs;
    for (const [hash, entry] of this.entries) {
      if (entry.usedAt > before) break;
      this.remove(hash, entry.row.user_id);
    }
  }

  /** Drops every token of these users, and keeps lookups already under way from storing theirs. */
  invalidateUsers(userIds: Iterable<string>): void {
    this.generation++;
    for (const userId of userIds) {
      const hashes = this.byUser.get(userId);
      if (!hashes) continue;
      this.byUser.delete(userId);
      for (const hash of hashes) this.entries.delete(hash);
    }
  }

  /** Drops everything (and keeps lookups under way from storing). */
  clear(): void {
    this.generation++;
    this.entries.clear();
    this.byUser.clear();
  }

  /** Turns the cache off (every lookup reads the database) and drops what it held. */
  disable(): void {
    this.on = false;
    this.clear();
  }

  /** Turns it back on, empty: nothing read while it was off is stored. No-op when the config turned it off. */
  enable(): void {
    this.clear();
    this.on = this.configured;
  }

  private remove(hash: string, userId: string): void {
    this.entries.delete(hash);
    const hashes = this.byUser.get(userId);
    if (!hashes) return;
    hashes.delete(hash);
    if (hashes.size === 0) this.byUser.delete(userId);
  }
}
