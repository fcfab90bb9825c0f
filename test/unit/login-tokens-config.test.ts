// login_via_existing_session (MSC3882): Synapse's keys and defaults, and the
// errors of its token_timeout.

import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/load.js';

const BASE = '/etc/gatehouse';
const build = (section: unknown) => buildConfig({ server_name: 'example.org', login_via_existing_session: section }, BASE);

function problemsOf(section: unknown): string[] {
  try {
    build(section);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error(`config was accepted: ${JSON.stringify(section)}`);
}

describe('login_via_existing_session', () => {
  it("defaults to Synapse's: off, re-authentication required, 5 minutes", () => {
    const { config, warnings } = buildConfig({ server_name: 'example.org' }, BASE);
    expect(config.login_via_existing_session).toEqual({ enabled: false, require_ui_auth: true, token_timeout: 300_000 });
    expect(warnings).toEqual([]);
    // YAML's empty value means the defaults too.
    expect(build(null).config.login_via_existing_session).toEqual({ enabled: false, require_ui_auth: true, token_timeout: 300_000 });
  });

  it('reads the keys, durations with units, without any warning', () => {
    for (const [given, ms] of [['2m', 120_000], ['90s', 90_000], [1500, 1500], ['1d', 86_400_000]] as const) {
      const { config, warnings } = build({ enabled: true, require_ui_auth: false, token_timeout: given });
      expect(config.login_via_existing_session).toEqual({ enabled: true, require_ui_auth: false, token_timeout: ms });
      expect(warnings).toEqual([]);
    }
  });

  it('refuses a timeout of zero, over a day or not a duration, and values of the wrong type, naming the key', () => {
    for (const bad of [0, '0s', '25h', '2d', 'soon', -5, true]) {
      const problems = problemsOf({ enabled: true, token_timeout: bad });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^login_via_existing_session\.token_timeout: /);
    }
    expect(problemsOf({ enabled: 'yes' })).toEqual([expect.stringMatching(/^login_via_existing_session\.enabled: expected true or false/)]);
    expect(problemsOf({ require_ui_auth: 1 })).toEqual([expect.stringMatching(/^login_via_existing_session\.require_ui_auth: /)]);
    expect(problemsOf(['enabled'])).toEqual([expect.stringMatching(/^login_via_existing_session: expected a mapping/)]);
  });

  it('warns about unknown keys inside it', () => {
    const { warnings } = build({ enabled: true, token_lifetime: '5m' });
    expect(warnings).toEqual(['unknown configuration key "login_via_existing_session.token_lifetime" is ignored']);
  });
});
