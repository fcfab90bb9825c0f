// The contributors Gatehouse's own areas add to /sync: global account data,
// to-device messages and the user's own presence. (Keys and device lists are
// contributed by the keys area; rooms will add theirs.)

import type { Knex } from 'knex';
import { presenceContent } from '../handlers/sync-data.js';
import type { StreamKind } from '../repositories/streams.js';
import * as SyncData from '../repositories/sync-data.js';
import { applyEventFilter } from './filter.js';
import type { SyncContributor, SyncRequester, SyncResponseParts, SyncWindow } from './types.js';

/** Global account data changed in the window (all of it on an initial or full-state sync). */
export const accountDataContributor: SyncContributor = {
  async contribute(db: Knex, who: SyncRequester, window: SyncWindow, response: SyncResponseParts) {
    const since = window.since && !window.fullState ? window.since.account_data : null;
    const rows = await SyncData.globalAccountDataBetween(db, who.userId, since, window.upTo.account_data);
    const events = rows.map((r) => ({ type: r.type, content: JSON.parse(r.content) as unknown }));
    response.account_data.events.push(...applyEventFilter(window.filter.account_data, events));
  },
};

/** Most to-device messages one sync delivers (as Synapse); the rest come in the next. */
export const TO_DEVICE_LIMIT = 100;

/**
 * To-device messages for the syncing device (spec: "Send-to-Device
 * messaging"): every message after `since` is delivered, and is deleted once
 * the device syncs with a token at or past it. A client retrying with the old
 * token gets the same messages again; with the new one, never again.
 */
export const toDeviceContributor: SyncContributor = {
  async acknowledge(db: Knex, who: SyncRequester, since: Record<StreamKind, number>) {
    await SyncData.deleteToDeviceUpTo(db, who.userId, who.deviceId, since.to_device);
  },
  async contribute(db: Knex, who: SyncRequester, window: SyncWindow, response: SyncResponseParts) {
    const since = window.since?.to_device ?? 0;
    const rows = await SyncData.toDeviceBetween(db, who.userId, who.deviceId, since, window.upTo.to_device, TO_DEVICE_LIMIT + 1);
    // One request queues at most one message per device, so each position holds at most one of this device's messages.
    const delivered = rows.slice(0, TO_DEVICE_LIMIT);
    if (rows.length > TO_DEVICE_LIMIT) window.upTo.to_device = Number(delivered[delivered.length - 1]!.stream_position);
    response.to_device.events.push(...delivered.map((r) => JSON.parse(r.event_json) as unknown));
  },
};

/** The user's own presence when it changed in the window (always on an initial or full-state sync, once set). */
export const presenceContributor: SyncContributor = {
  async contribute(db: Knex, who: SyncRequester, window: SyncWindow, response: SyncResponseParts) {
    const row = await SyncData.getPresence(db, who.userId);
    if (!row) return;
    const position = Number(row.stream_position);
    if (position > window.upTo.presence) return;
    if (window.since && !window.fullState && position <= window.since.presence) return;
    const events = [{ type: 'm.presence', sender: who.userId, content: presenceContent(row) }];
    response.presence.events.push(...applyEventFilter(window.filter.presence, events));
  },
};
