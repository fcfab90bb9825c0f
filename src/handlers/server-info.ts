// What the server says about itself: versions, capabilities, well-known, signing keys.

import type { Config, WellKnownSupport } from '../config/types.js';
import { type SigningKey, signJson, unpaddedBase64 } from '../crypto/signing-key.js';
import { notFound } from '../errors.js';
import { loginTokensAvailableTo } from './login-tokens.js';
import type { Requester } from './sessions.js';
import { profileCapabilities } from './profiles.js';

/** Every spec version whose account/auth surface Gatehouse serves. Element needs one of v1.1–v1.9, Nheko one of v1.1–v1.5. */
export const SPEC_VERSIONS = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
];

/** How long other servers may cache our key response. */
const KEY_VALIDITY_MS = 7 * 24 * 3_600_000;

export class ServerInfoHandler {
  constructor(
    private readonly config: Config,
    private readonly signingKey: SigningKey,
    private readonly clock: () => number = Date.now,
  ) {}

  versions() {
    const unstable_features: Record<string, boolean> = {
      // MSC4133 at its stable paths (spec v1.16, which is not advertised as a whole): clients such as
      // matrix-js-sdk then read and write custom profile fields (m.tz) there.
      'uk.tcpip.msc4133.stable': true,
      // MSC4323 (the admin endpoints for suspension and locking) while clients look for its unstable flag.
      'uk.timedout.msc4323': true,
    };
    return { versions: SPEC_VERSIONS, unstable_features };
  }

  /**
   * GET /capabilities for `requester` (some capabilities are per user: spec).
   * `m.account_moderation` (MSC4323, spec v1.18; also under its unstable name)
   * is advertised to server admins only: they alone may use the endpoints it
   * announces, and the spec asks that it be left out rather than sent with
   * both keys false.
   */
  capabilities(requester: Pick<Requester, 'isGuest' | 'isAdmin'>) {
    const c = this.config;
    const moderation = requester.isAdmin
      ? { 'm.account_moderation': { suspend: true, lock: true }, 'uk.timedout.msc4323': { suspend: true, lock: true } }
      : {};
    return {
      capabilities: {
        'm.change_password': { enabled: c.password_config.enabled },
        // m.set_displayname, m.set_avatar_url and m.profile_fields (MSC4133).
        ...profileCapabilities(c),
        // Unlike Synapse (enable_3pid_changes alone): without the email section no address can be
        // added (requestToken answers M_THREEPID_MEDIUM_NOT_SUPPORTED), so clients should not offer it.
        // Deleting an address an admin set still works then; clients show the list read-only.
        'm.3pid_changes': { enabled: c.enable_3pid_changes && c.email !== null },
        'm.get_login_token': { enabled: loginTokensAvailableTo(c, requester) },
        // Clients read this even before rooms exist; these are the versions rooms will be created in.
        'm.room_versions': {
          default: '10',
          available: Object.fromEntries(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'].map((v) => [v, 'stable'])),
        },
        ...moderation,
      },
    };
  }

  clientWellKnown() {
    if (!this.config.public_baseurl) throw notFound('No .well-known/matrix/client is configured (set public_baseurl)');
    return { 'm.homeserver': { base_url: this.config.public_baseurl } };
  }

  /**
   * GET /.well-known/matrix/server: `{"m.server": "host:port"}` naming
   * `well_known_server`, or else the server name with port 443 unless it names
   * one (as Synapse's ServerWellKnownResource: the server name, never
   * public_baseurl's host). 404 M_NOT_FOUND unless `serve_server_wellknown`.
   */
  serverWellKnown() {
    if (!this.config.serve_server_wellknown) throw notFound('.well-known/matrix/server is not served (serve_server_wellknown)');
    return { 'm.server': this.config.well_known_server ?? withDefaultPort(this.config.server_name, 443) };
  }

  /**
   * GET /.well-known/matrix/support (spec v1.10, MSC1929):
   * `{contacts?: [{role, matrix_id?, email_address?}], support_page?}` from
   * `well_known_support`, or else `admin_contact` as one `m.role.admin`
   * contact. 404 M_NOT_FOUND when neither gives anything.
   */
  supportWellKnown() {
    const configured = this.config.well_known_support ?? supportFromAdminContact(this.config.admin_contact);
    if (!configured) throw notFound('No .well-known/matrix/support is configured (set well_known_support or admin_contact)');
    const body: { contacts?: Record<string, string>[]; support_page?: string } = {};
    if (configured.contacts.length > 0) {
      body.contacts = configured.contacts.map((c) => {
        const contact: Record<string, string> = { role: c.role };
        if (c.matrix_id !== null) contact.matrix_id = c.matrix_id;
        if (c.email_address !== null) contact.email_address = c.email_address;
        return contact;
      });
    }
    if (configured.support_page !== null) body.support_page = configured.support_page;
    return body;
  }

  private signedKeys: { body: Record<string, unknown>; validUntil: number } | null = null;

  /** GET /_matrix/key/v2/server: our verify key, signed by itself (re-signed once half its validity has passed). */
  serverKeys() {
    const now = this.clock();
    if (!this.signedKeys || this.signedKeys.validUntil - now < KEY_VALIDITY_MS / 2) {
      const body = {
        server_name: this.config.server_name,
        valid_until_ts: now + KEY_VALIDITY_MS,
        verify_keys: { [this.signingKey.keyId]: { key: unpaddedBase64(this.signingKey.publicKey) } },
        old_verify_keys: {},
      };
      this.signedKeys = { body: signJson(body, this.config.server_name, this.signingKey), validUntil: body.valid_until_ts };
    }
    return this.signedKeys.body;
  }
}

/** "host" → "host:port"; a name that already has a port ("host:8448", "[::1]:8448") is kept. */
function withDefaultPort(serverName: string, port: number): string {
  return /:\d+$/.test(serverName) ? serverName : `${serverName}:${port}`;
}

/**
 * Synapse's `admin_contact` as a support document: `mailto:a@b` or a bare
 * address is an email contact, `@user:server` a Matrix one. Anything else
 * gives nothing (null).
 */
function supportFromAdminContact(adminContact: string | null): WellKnownSupport | null {
  const value = adminContact?.trim() ?? '';
  const contact = (fields: { matrix_id?: string; email_address?: string }): WellKnownSupport => ({
    contacts: [{ role: 'm.role.admin', matrix_id: fields.matrix_id ?? null, email_address: fields.email_address ?? null }],
    support_page: null,
  });
  if (/^@[^:\s]+:\S+$/.test(value)) return contact({ matrix_id: value });
  const mailto = /^mailto:([^?]*)/i.exec(value);
  const address = mailto ? safeDecode(mailto[1]!) : value;
  if (/^[^@\s]+@[^@\s]+$/.test(address)) return contact({ email_address: address });
  return null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
