// The profile keys of the config (profile_fields, Synapse's profile lookup
// and user_directory keys) and the capabilities they give.

import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { profileCapabilities } from '../../src/handlers/profiles.js';
import { isTimeZone } from '../../src/domain/profiles.js';

const BASE = '/etc/gatehouse';
const build = (extra: Record<string, unknown>) => buildConfig({ server_name: 'example.org', ...extra }, BASE);

function problemsOf(extra: Record<string, unknown>): string[] {
  try {
    build(extra);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error(`accepted: ${JSON.stringify(extra)}`);
}

describe('profile configuration', () => {
  it('defaults: every field changeable, lookups open, the directory on but searching nobody (as Synapse)', () => {
    const { config, warnings } = build({});
    expect(warnings).toEqual([]);
    expect(config.profile_fields).toEqual({ enabled: true, allowed: null, disallowed: null });
    expect(config.require_auth_for_profile_requests).toBe(false);
    expect(config.limit_profile_requests_to_users_who_share_rooms).toBe(false);
    expect(config.user_directory).toEqual({ enabled: true, search_all_users: false, show_locked_users: false });
  });

  it('reads the Synapse keys that were refused before, and refuses values that are not booleans (never open by mistake)', () => {
    const { config } = build({
      require_auth_for_profile_requests: true,
      limit_profile_requests_to_users_who_share_rooms: true,
      user_directory: { enabled: false, search_all_users: true, show_locked_users: true, prefer_local_users: true, exclude_remote_users: false },
    });
    expect(config.require_auth_for_profile_requests).toBe(true);
    expect(config.limit_profile_requests_to_users_who_share_rooms).toBe(true);
    expect(config.user_directory).toEqual({ enabled: false, search_all_users: true, show_locked_users: true });
    for (const [key, value] of [
      ['require_auth_for_profile_requests', 'yes'],
      ['limit_profile_requests_to_users_who_share_rooms', 1],
    ] as const)
      expect(problemsOf({ [key]: value })).toEqual([expect.stringMatching(new RegExp(`^${key}: expected true or false`))]);
    expect(problemsOf({ user_directory: { enabled: 0 } })).toEqual([expect.stringMatching(/^user_directory\.enabled: expected true or false/)]);
    expect(problemsOf({ user_directory: 'off' })).toEqual([expect.stringMatching(/^user_directory: expected a mapping/)]);
  });

  it('profile_fields: names must follow the field grammar; allowed and disallowed not both', () => {
    expect(build({ profile_fields: { allowed: ['m.tz', 'displayname', 'org.example.x-y_z'] } }).config.profile_fields.allowed).toEqual([
      'm.tz',
      'displayname',
      'org.example.x-y_z',
    ]);
    expect(problemsOf({ profile_fields: { disallowed: ['Org.Example', 5] } })).toEqual([expect.stringMatching(/^profile_fields\.disallowed: not profile field names/)]);
    expect(problemsOf({ profile_fields: { allowed: 'm.tz' } })).toEqual([expect.stringMatching(/^profile_fields\.allowed: expected a list/)]);
    expect(problemsOf({ profile_fields: { allowed: [], disallowed: [] } })).toEqual(['profile_fields: give allowed or disallowed, not both']);
    expect(problemsOf({ profile_fields: { enabled: 'no' } })).toEqual([expect.stringMatching(/^profile_fields\.enabled: expected true or false/)]);
  });
});

describe('profile capabilities', () => {
  const caps = (extra: Record<string, unknown>) => profileCapabilities(build(extra).config);

  it('everything open by default', () => {
    expect(caps({})).toEqual({
      'm.set_displayname': { enabled: true },
      'm.set_avatar_url': { enabled: true },
      'm.profile_fields': { enabled: true },
    });
  });

  it("Synapse's two switches become disallowed fields (as Synapse) and turn their own capability off", () => {
    expect(caps({ enable_set_displayname: false, enable_set_avatar_url: false })).toEqual({
      'm.set_displayname': { enabled: false },
      'm.set_avatar_url': { enabled: false },
      'm.profile_fields': { enabled: true, disallowed: ['displayname', 'avatar_url'] },
    });
    expect(caps({ enable_set_avatar_url: false, profile_fields: { disallowed: ['avatar_url', 'org.x'] } })['m.profile_fields']).toEqual({
      enabled: true,
      disallowed: ['avatar_url', 'org.x'],
    });
  });

  it('profile_fields.enabled: false closes every field, display name and avatar included', () => {
    expect(caps({ profile_fields: { enabled: false } })).toEqual({
      'm.set_displayname': { enabled: false },
      'm.set_avatar_url': { enabled: false },
      'm.profile_fields': { enabled: false },
    });
  });

  it('an allowed list: only those, less what the switches close; an empty result is enabled: false', () => {
    expect(caps({ profile_fields: { allowed: ['displayname', 'm.tz'] } })).toEqual({
      'm.set_displayname': { enabled: true },
      'm.set_avatar_url': { enabled: false },
      'm.profile_fields': { enabled: true, allowed: ['displayname', 'm.tz'] },
    });
    expect(caps({ enable_set_displayname: false, profile_fields: { allowed: ['displayname', 'm.tz'] } })['m.profile_fields']).toEqual({
      enabled: true,
      allowed: ['m.tz'],
    });
    expect(caps({ enable_set_displayname: false, profile_fields: { allowed: ['displayname'] } })['m.profile_fields']).toEqual({ enabled: false });
    expect(caps({ profile_fields: { allowed: [] } })['m.profile_fields']).toEqual({ enabled: false });
  });
});

describe('m.tz', () => {
  it('IANA names, canonical or links, are time zones; offsets and unknown names are not', () => {
    for (const z of ['Europe/Paris', 'Asia/Kolkata', 'Asia/Calcutta', 'Europe/Kyiv', 'Europe/Kiev', 'US/Eastern', 'UTC', 'Etc/UTC', 'GMT', 'europe/paris'])
      expect(isTimeZone(z), z).toBe(true);
    for (const z of ['+01:00', '-05:00', '+0100', 'Mars/Olympus_Mons', '', ' UTC', 'UTC ', 'Z', 'localtime', 'x'.repeat(65)]) expect(isTimeZone(z), z).toBe(false);
  });
});
