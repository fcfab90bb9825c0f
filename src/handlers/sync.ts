// GET /sync (spec: "Syncing"): one loop over the registered contributors. A
// sync with a `since` token and nothing new waits (up to `timeout`) for the
// notifier to name its user, then reads again; the next_batch token holds the
// position of every stream kind, so it survives restarts.

import type { Knex } from 'knex';
import { currentPositions, STREAM_KINDS, type StreamKind } from '../repositories/streams.js';
import type { Filter } from '../sync/filter.js';
import type { Notifier } from '../sync/notifier.js';
import { decodeSyncToken, encodeSyncToken } from '../sync/token.js';
import type { SyncContributor, SyncRequester, SyncResponseParts, SyncWindow } from '../sync/types.js';
import type { PresenceHandler, PresenceState } from './sync-data.js';

/** Longest wait of one long-poll (Synapse has no cap; proxies drop idle requests long before this). */
export const MAX_SYNC_TIMEOUT_MS = 10 * 60_000;

export interface SyncRequest {
  since: string | null;
  /** Milliseconds (already capped). */
  timeoutMs: number;
  fullState: boolean;
  setPresence: PresenceState;
  filter: Filter;
  /** Aborts the wait when the client goes away. */
  signal?: AbortSignal;
}

export type SyncResponse = SyncResponseParts & { next_batch: string };

function emptyParts(): SyncResponseParts {
  return {
    account_data: { events: [] },
    presence: { events: [] },
    to_device: { events: [] },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: {},
    device_unused_fallback_key_types: [],
    rooms: { join: {}, invite: {}, leave: {}, knock: {} },
  };
}

/** Whether a response carries anything the client has not seen (key counts are always sent, so they do not count). */
function hasNews(r: SyncResponseParts): boolean {
  return (
    r.account_data.events.length > 0 ||
    r.presence.events.length > 0 ||
    r.to_device.events.length > 0 ||
    r.device_lists.changed.length > 0 ||
    r.device_lists.left.length > 0 ||
    Object.values(r.rooms).some((section) => Object.keys(section).length > 0)
  );
}

export class SyncHandler {
  constructor(
    private readonly db: Knex,
    private readonly notifier: Notifier,
    private readonly contributors: SyncContributor[],
    private readonly presence: PresenceHandler,
  ) {}

  /**
   * One sync. Without `since` (or with `full_state`), answers at once.
   * Otherwise waits until something for the user changes or `timeoutMs`
   * passes (answering an empty batch). A `since` this server did not write is
   * 400 M_INVALID_PARAM; positions beyond the current ones (a database
   * restored from a backup) are read as the current ones.
   */
  async sync(who: SyncRequester, req: SyncRequest): Promise<SyncResponse> {
    const decoded = req.since === null ? null : decodeSyncToken(req.since);
    await this.presence.onSync(who.userId, req.setPresence);
    const deadline = Date.now() + req.timeoutMs;
    for (;;) {
      // Listen before reading, so that a change committed while reading still wakes this request.
      const waiter = new AbortController();
      const onAbort = () => waiter.abort();
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const woken = this.notifier.waitFor(who.userId, Math.max(0, deadline - Date.now()), waiter.signal);
      try {
        const { response, window } = await this.read(who, decoded, req);
        const done = decoded === null || req.fullState || hasNews(response) || Date.now() >= deadline || req.signal?.aborted;
        if (done) return { ...response, next_batch: encodeSyncToken(window.upTo) };
        if (!(await woken)) {
          if (req.signal?.aborted) return { ...response, next_batch: encodeSyncToken(window.upTo) };
          // Timed out: read once more before answering, so that a change whose notification did not
          // reach this process (another process's NOTIFY lost with its connection) is not held back
          // until the next sync.
          const last = await this.read(who, decoded, req);
          return { ...last.response, next_batch: encodeSyncToken(last.window.upTo) };
        }
        // Woken by a change: read again (it may be for another device, so the loop can wait again).
      } finally {
        waiter.abort();
        req.signal?.removeEventListener('abort', onAbort);
      }
    }
  }

  private async read(who: SyncRequester, decoded: Record<StreamKind, number> | null, req: SyncRequest) {
    const upTo = await currentPositions(this.db);
    const since = decoded && (Object.fromEntries(STREAM_KINDS.map((k) => [k, Math.min(decoded[k], upTo[k])])) as Record<StreamKind, number>);
    if (since) for (const c of this.contributors) await c.acknowledge?.(this.db, who, since);
    const window: SyncWindow = { since, upTo, filter: req.filter, fullState: req.fullState };
    const response = emptyParts();
    for (const c of this.contributors) await c.contribute(this.db, who, window, response);
    return { response, window };
  }
}
