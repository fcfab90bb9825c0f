// The seam between /sync and the areas that feed it. Each area registers a
// contributor that adds its part of the response for the positions between
// `since` and `upTo`, so that sync stays one loop and rooms slot in later.

import type { Knex } from 'knex';
import type { StreamKind } from '../repositories/streams.js';
import type { Filter } from './filter.js';

/** Who is syncing. */
export interface SyncRequester {
  userId: string;
  deviceId: string;
}

/** The stream positions a sync covers: after `since` (null = initial sync), up to `upTo`. */
export interface SyncWindow {
  since: Record<StreamKind, number> | null;
  /**
   * A contributor that delivers only part of its stream (to-device: at most
   * 100 messages) lowers its kind's position here; next_batch is written from it.
   */
  upTo: Record<StreamKind, number>;
  /** The request's filter ({} when none). */
  filter: Filter;
  /** `full_state=true`: deliver current state as for an initial sync. */
  fullState: boolean;
}

/** The parts of the sync response contributors fill (spec: GET /sync). */
export interface SyncResponseParts {
  account_data: { events: unknown[] };
  presence: { events: unknown[] };
  to_device: { events: unknown[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
  device_unused_fallback_key_types: string[];
  rooms: { join: Record<string, unknown>; invite: Record<string, unknown>; leave: Record<string, unknown>; knock: Record<string, unknown> };
}

export interface SyncContributor {
  /** Adds this area's data for `window` to `response`. Must be read-only. */
  contribute(db: Knex, who: SyncRequester, window: SyncWindow, response: SyncResponseParts): Promise<void>;
  /**
   * Optional: the device acknowledged everything up to `since` by syncing
   * with it (to-device messages are deleted then). Runs before `contribute`.
   */
  acknowledge?(db: Knex, who: SyncRequester, since: Record<StreamKind, number>): Promise<void>;
}
