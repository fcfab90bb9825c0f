// What the server says about itself: versions, capabilities, well-known, signing keys.

import type { Config } from '../config/types.js';
import { type SigningKey, signJson, unpaddedBase64 } from '../crypto/signing-key.js';
import { notFound } from '../errors.js';

/** Every spec version whose account/auth surface Gatehouse serves. Element needs one of v1.1–v1.9, Nheko one of v1.1–v1.5. */
export const SPEC_VERSIONS = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
];

/** How long other servers may cache our key response. */
const KEY_VALIDITY_MS = 7 * 24 * 3_600_000;

/** Whether the endpoints behind these capabilities exist yet (they arrive with later issues). */
const PROFILE_ENDPOINTS_SERVED = false;
const THREEPID_ENDPOINTS_SERVED = false;

export class ServerInfoHandler {
  constructor(
    private readonly config: Config,
    private readonly signingKey: SigningKey,
    private readonly clock: () => number = Date.now,
  ) {}

  versions() {
    return { versions: SPEC_VERSIONS, unstable_features: {} as Record<string, boolean> };
  }

  capabilities() {
    const c = this.config;
    return {
      capabilities: {
        'm.change_password': { enabled: c.password_config.enabled },
        // Profile and 3PID endpoints are not served yet: until they are, clients must not offer
        // those changes, whatever the config allows.
        'm.set_displayname': { enabled: PROFILE_ENDPOINTS_SERVED && c.enable_set_displayname },
        'm.set_avatar_url': { enabled: PROFILE_ENDPOINTS_SERVED && c.enable_set_avatar_url },
        'm.3pid_changes': { enabled: THREEPID_ENDPOINTS_SERVED && c.enable_3pid_changes },
        'm.get_login_token': { enabled: false },
        // Clients read this even before rooms exist; these are the versions rooms will be created in.
        'm.room_versions': {
          default: '10',
          available: Object.fromEntries(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'].map((v) => [v, 'stable'])),
        },
      },
    };
  }

  clientWellKnown() {
    if (!this.config.public_baseurl) throw notFound('No .well-known/matrix/client is configured (set public_baseurl)');
    return { 'm.homeserver': { base_url: this.config.public_baseurl } };
  }

  serverWellKnown() {
    if (!this.config.serve_server_wellknown) throw notFound('.well-known/matrix/server is not served (serve_server_wellknown)');
    const host = this.config.public_baseurl ? new URL(this.config.public_baseurl).hostname : this.config.server_name;
    // As Synapse: delegate federation to port 443 of the public host.
    return { 'm.server': `${host}:443` };
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
