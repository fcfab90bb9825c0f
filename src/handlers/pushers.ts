// Pushers (spec: GET /pushers, POST /pushers/set). They are stored and listed;
// Gatehouse does not deliver to push gateways yet.

import type { Knex } from 'knex';
import type { Requester } from './sessions.js';
import { badJson, invalidParam, missingParam } from '../errors.js';
import * as Push from '../repositories/push.js';

/** Spec limits: pushkey 512 bytes, app_id 64 characters. */
const MAX_PUSHKEY_BYTES = 512;
const MAX_APP_ID = 64;
/** Longest of the other strings (names, language, profile tag). */
const MAX_TEXT = 1000;
const NOTIFY_PATH = '/_matrix/push/v1/notify';

export interface PusherOut {
  pushkey: string;
  kind: string;
  app_id: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag?: string;
  lang: string;
  data: Record<string, unknown>;
}

export class PusherHandler {
  constructor(
    private readonly db: Knex,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The user's pushers, in the spec's Pusher shape. */
  async list(userId: string): Promise<PusherOut[]> {
    return (await Push.pushersOf(this.db, userId)).map((p) => {
      const out: PusherOut = {
        pushkey: p.pushkey,
        kind: p.kind,
        app_id: p.app_id,
        app_display_name: p.app_display_name,
        device_display_name: p.device_display_name,
        lang: p.lang,
        data: p.data,
      };
      if (p.profile_tag !== null) out.profile_tag = p.profile_tag;
      return out;
    });
  }

  /**
   * POST /pushers/set. `kind: null` deletes the user's pusher for (app_id,
   * pushkey), if any. Otherwise creates or updates it, tied to the caller's
   * session (it goes when that session ends). Only `http` pushers: `data.url`
   * is required, an https URL whose path is /_matrix/push/v1/notify (spec);
   * `data.format` may only be `event_id_only`. `email` pushers are 400
   * M_INVALID_PARAM (Gatehouse sends no email). Unless `append`, the same
   * app_id and pushkey stop pushing for other users. Missing fields are 400
   * M_MISSING_PARAM, wrong types 400 M_BAD_JSON.
   */
  async set(requester: Requester, body: Record<string, unknown>): Promise<void> {
    const str = (name: string, max: number, required: boolean): string | null => {
      const v = body[name];
      if (v === undefined || v === null) {
        if (required) throw missingParam(`Missing parameter: ${name}`);
        return null;
      }
      if (typeof v !== 'string') throw badJson(`${name} must be a string`);
      if (v.includes('\u0000')) throw badJson(`${name} must not contain NUL characters`);
      if (v.length > max) throw badJson(`${name} must be at most ${max} characters`);
      return v;
    };
    if (!('kind' in body)) throw missingParam('Missing parameter: kind');
    const appId = str('app_id', MAX_APP_ID, true)!;
    const pushkey = str('pushkey', MAX_PUSHKEY_BYTES, true)!;
    if (Buffer.byteLength(pushkey, 'utf8') > MAX_PUSHKEY_BYTES) throw badJson(`pushkey must be at most ${MAX_PUSHKEY_BYTES} bytes`);
    const kind = str('kind', 16, false);
    if (kind === null) {
      await Push.deletePusher(this.db, requester.userId, appId, pushkey);
      return;
    }
    if (kind === 'email') throw invalidParam('Email pushers are not supported: this server sends no email');
    if (kind !== 'http') throw invalidParam(`Unknown pusher kind: ${kind}`);
    const appDisplayName = str('app_display_name', MAX_TEXT, true)!;
    const deviceDisplayName = str('device_display_name', MAX_TEXT, true)!;
    const lang = str('lang', MAX_TEXT, true)!;
    const profileTag = str('profile_tag', MAX_TEXT, false);
    const data = body.data;
    if (data === undefined || data === null) throw missingParam('Missing parameter: data');
    if (typeof data !== 'object' || Array.isArray(data)) throw badJson('data must be an object');
    const d = data as Record<string, unknown>;
    if (d.url === undefined || d.url === null) throw missingParam('data.url is required for http pushers');
    if (typeof d.url !== 'string') throw badJson('data.url must be a string');
    let url: URL;
    try {
      url = new URL(d.url);
    } catch {
      throw invalidParam('data.url must be a URL');
    }
    if (url.protocol !== 'https:') throw invalidParam('data.url must be an https URL');
    if (url.pathname !== NOTIFY_PATH) throw invalidParam(`data.url must have the path ${NOTIFY_PATH}`);
    if (d.format !== undefined && d.format !== null && d.format !== 'event_id_only') throw invalidParam('data.format may only be "event_id_only"');
    const append = body.append ?? false;
    if (typeof append !== 'boolean') throw badJson('append must be a boolean');
    await this.db.transaction(async (trx) => {
      await Push.upsertPusher(
        trx,
        {
          user_id: requester.userId,
          device_id: requester.deviceId,
          app_id: appId,
          pushkey,
          kind,
          app_display_name: appDisplayName,
          device_display_name: deviceDisplayName,
          profile_tag: profileTag,
          lang,
          data: d,
        },
        this.clock(),
      );
      if (!append) await Push.deleteOthersPushers(trx, requester.userId, appId, pushkey);
    });
  }
}
