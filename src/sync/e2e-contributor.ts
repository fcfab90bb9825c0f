// The end-to-end encryption part of /sync: the syncing device's one-time key
// counts and unused fallback key types, and whose device lists changed.

import type { Knex } from 'knex';
import { countOneTimeKeys, unusedFallbackKeyTypes } from '../repositories/e2e-keys.js';
import { deviceListsChangedBetween } from '../repositories/streams.js';
import type { SyncContributor, SyncRequester, SyncResponseParts, SyncWindow } from './types.js';

/**
 * Fills `device_one_time_keys_count` (the requester's device, by algorithm;
 * signed_curve25519 always present, as Synapse, so clients know to top up),
 * `device_unused_fallback_key_types`, and `device_lists.changed` (the user's
 * own ID when their device list changed after `since`; room members later).
 * An initial sync reports no device-list changes (as Synapse).
 */
export const e2eSyncContributor: SyncContributor = {
  async contribute(db: Knex, who: SyncRequester, window: SyncWindow, response: SyncResponseParts): Promise<void> {
    response.device_one_time_keys_count = { signed_curve25519: 0, ...(await countOneTimeKeys(db, who.userId, who.deviceId)) };
    response.device_unused_fallback_key_types = await unusedFallbackKeyTypes(db, who.userId, who.deviceId);
    if (window.since === null) return;
    const changed = await deviceListsChangedBetween(db, [who.userId], window.since.device_lists, window.upTo.device_lists);
    for (const u of changed) if (!response.device_lists.changed.includes(u)) response.device_lists.changed.push(u);
  },
};
