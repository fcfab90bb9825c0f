// Push rules, black-box: the spec's default rule set for the user, and the
// user's own rules (put, get, delete, enabled, actions, before/after).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const RULES = `${V3}/pushrules`;
const TABLES = ['push_rules', 'push_rule_defaults'];

// The spec's predefined rules (Client-Server API, "Predefined rules"), in its order.
const OVERRIDE_IDS = [
  '.m.rule.master',
  '.m.rule.suppress_notices',
  '.m.rule.invite_for_me',
  '.m.rule.member_event',
  '.m.rule.is_user_mention',
  '.m.rule.contains_display_name',
  '.m.rule.is_room_mention',
  '.m.rule.roomnotif',
  '.m.rule.tombstone',
  '.m.rule.reaction',
  '.m.rule.room.server_acl',
  '.m.rule.suppress_edits',
];
const UNDERRIDE_IDS = ['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted'];

describe.each(backends())('push rules (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });
  const ids = (rules: { rule_id: string }[]) => rules.map((r) => r.rule_id);

  it('serves the spec default rule set, with the user in the rules that name them', async () => {
    const u = await hs.register('pr_defaults');
    const res = await hs.request('GET', `${RULES}/`, { token: u.access_token });
    expect(res.status).toBe(200);
    const g = res.body.global;
    expect(Object.keys(g).sort()).toEqual(['content', 'override', 'room', 'sender', 'underride']);
    expect(ids(g.override)).toEqual(OVERRIDE_IDS);
    expect(ids(g.underride)).toEqual(UNDERRIDE_IDS);
    expect(g.room).toEqual([]);
    expect(g.sender).toEqual([]);
    expect(g.content).toEqual([
      {
        rule_id: '.m.rule.contains_user_name',
        default: true,
        enabled: true,
        pattern: 'pr_defaults',
        actions: ['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }],
      },
    ]);
    const byId: Record<string, any> = Object.fromEntries([...g.override, ...g.underride].map((r: { rule_id: string }) => [r.rule_id, r]));
    expect(byId['.m.rule.master']).toEqual({ rule_id: '.m.rule.master', default: true, enabled: false, conditions: [], actions: [] });
    expect(byId['.m.rule.is_user_mention'].conditions).toEqual([
      { kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: u.user_id },
    ]);
    expect(byId['.m.rule.invite_for_me'].conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: u.user_id });
    expect(byId['.m.rule.suppress_notices'].actions).toEqual([]);
    expect(byId['.m.rule.call'].actions).toEqual(['notify', { set_tweak: 'sound', value: 'ring' }, { set_tweak: 'highlight', value: false }]);
    expect(byId['.m.rule.encrypted_room_one_to_one'].conditions).toEqual([
      { kind: 'room_member_count', is: '2' },
      { kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' },
    ]);
    for (const r of [...g.override, ...g.underride]) expect(r).toMatchObject({ default: true, conditions: expect.any(Array), actions: expect.any(Array) });
    // /pushrules/global/ is the same set; a single rule is served on its own path.
    expect((await hs.request('GET', `${RULES}/global/`, { token: u.access_token })).body).toEqual(g);
    const one = await hs.request('GET', `${RULES}/global/override/.m.rule.master`, { token: u.access_token });
    expect(one.body).toEqual(byId['.m.rule.master']);
    expect((await hs.request('GET', `${RULES}/global/override/.m.rule.master/enabled`, { token: u.access_token })).body).toEqual({ enabled: false });
  });

  it('creates, orders, changes and deletes the user’s own rules', async () => {
    const u = await hs.register('pr_own');
    const t = { token: u.access_token };
    const put = (kind: string, id: string, body: unknown, query = '') => hs.request('PUT', `${RULES}/global/${kind}/${encodeURIComponent(id)}${query}`, { ...t, body });
    expect((await put('content', 'cake', { pattern: 'cake*lie', actions: ['notify'] })).status).toBe(200);
    expect((await put('override', 'a', { conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }], actions: [] })).status).toBe(200);
    // Newest first, after the master rule, before the other defaults.
    expect((await put('override', 'b', { actions: ['notify'] })).status).toBe(200);
    expect((await put('override', 'c', { actions: [] }, '?after=b')).status).toBe(200);
    expect((await put('override', 'd', { actions: [] }, '?before=b&after=a')).status).toBe(200);
    const g = (await hs.request('GET', `${RULES}/`, t)).body.global;
    expect(ids(g.override)).toEqual(['.m.rule.master', 'd', 'b', 'c', 'a', ...OVERRIDE_IDS.slice(1)]);
    expect(g.override[1]).toEqual({ rule_id: 'd', default: false, enabled: true, conditions: [], actions: [] });
    expect(g.content[0]).toEqual({ rule_id: 'cake', default: false, enabled: true, pattern: 'cake*lie', actions: ['notify'] });
    // Room and sender rules: the rule ID is the room or user; neither conditions nor pattern.
    expect((await put('room', '!room:test.local', { actions: ['dont_notify'] })).status).toBe(200);
    expect((await hs.request('GET', `${RULES}/global/room/${encodeURIComponent('!room:test.local')}`, t)).body).toEqual({
      rule_id: '!room:test.local',
      default: false,
      enabled: true,
      actions: ['dont_notify'],
    });
    // Enabled and actions, on the user's rules and on defaults.
    expect((await hs.request('PUT', `${RULES}/global/override/b/enabled`, { ...t, body: { enabled: false } })).status).toBe(200);
    expect((await hs.request('GET', `${RULES}/global/override/b/enabled`, t)).body).toEqual({ enabled: false });
    // Updating a rule keeps its place and whether it is enabled.
    expect((await put('override', 'b', { actions: ['notify'] })).status).toBe(200);
    const again = (await hs.request('GET', `${RULES}/`, t)).body.global.override;
    expect(ids(again).slice(0, 5)).toEqual(['.m.rule.master', 'd', 'b', 'c', 'a']);
    expect(again[2].enabled).toBe(false);
    expect((await hs.request('PUT', `${RULES}/global/override/.m.rule.master/enabled`, { ...t, body: { enabled: true } })).status).toBe(200);
    expect((await hs.request('PUT', `${RULES}/global/underride/.m.rule.message/actions`, { ...t, body: { actions: [] } })).status).toBe(200);
    const after = (await hs.request('GET', `${RULES}/`, t)).body.global;
    expect(after.override[0]).toMatchObject({ rule_id: '.m.rule.master', enabled: true, default: true });
    expect(after.underride.find((r: { rule_id: string }) => r.rule_id === '.m.rule.message').actions).toEqual([]);
    expect((await hs.request('GET', `${RULES}/global/underride/.m.rule.message/actions`, t)).body).toEqual({ actions: [] });
    // Another user sees only the defaults.
    const other = await hs.register('pr_other');
    const og = (await hs.request('GET', `${RULES}/`, { token: other.access_token })).body.global;
    expect(ids(og.override)).toEqual(OVERRIDE_IDS);
    expect(og.override[0].enabled).toBe(false);
    // Delete.
    expect((await hs.request('DELETE', `${RULES}/global/override/c`, t)).status).toBe(200);
    expectMatrixError(await hs.request('GET', `${RULES}/global/override/c`, t), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('DELETE', `${RULES}/global/override/c`, t), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('DELETE', `${RULES}/global/override/.m.rule.master`, t), 404, 'M_NOT_FOUND');
  });

  it('refuses bad rules, changing nothing', async () => {
    const u = await hs.register('pr_bad');
    const t = { token: u.access_token };
    await hs.request('PUT', `${RULES}/global/override/x`, { ...t, body: { actions: [] } });
    await expectNoChange(
      hs,
      async () => {
        const cases: [string, string, unknown, number, string][] = [
          ['override', '.mine', { actions: [] }, 400, 'M_INVALID_PARAM'],
          ['override', 'a\\b', { actions: [] }, 400, 'M_INVALID_PARAM'],
          ['override', 'a%2Fb', { actions: [] }, 400, 'M_INVALID_PARAM'],
          ['override', 'n'.repeat(300), { actions: [] }, 400, 'M_INVALID_PARAM'],
          ['nonsense', 'x', { actions: [] }, 400, 'M_UNRECOGNIZED'],
          ['override', 'y', {}, 400, 'M_MISSING_PARAM'],
          ['override', 'y', { actions: 'notify' }, 400, 'M_BAD_JSON'],
          ['override', 'y', { actions: ['shout'] }, 400, 'M_INVALID_PARAM'],
          ['override', 'y', { actions: [{ value: 1 }] }, 400, 'M_INVALID_PARAM'],
          ['override', 'y', { actions: [], conditions: {} }, 400, 'M_BAD_JSON'],
          ['override', 'y', { actions: [], conditions: [{ key: 'type' }] }, 400, 'M_INVALID_PARAM'],
          ['override', 'y', { actions: new Array(101).fill('notify') }, 400, 'M_BAD_JSON'],
          ['content', 'y', { actions: [] }, 400, 'M_MISSING_PARAM'],
          ['content', 'y', { actions: [], pattern: 5 }, 400, 'M_BAD_JSON'],
          ['override', 'y', [], 400, 'M_BAD_JSON'],
        ];
        for (const [kind, id, body, status, errcode] of cases) {
          const path = `${RULES}/global/${kind}/${id.includes('%') ? id : encodeURIComponent(id)}`;
          expectMatrixError(await hs.request('PUT', path, { ...t, body }), status, errcode);
        }
        // before/after must name one of the user's rules of this kind (spec: 400 M_UNKNOWN).
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/y?before=nope`, { ...t, body: { actions: [] } }), 400, 'M_UNKNOWN');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/y?after=.m.rule.master`, { ...t, body: { actions: [] } }), 400, 'M_UNKNOWN');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/underride/y?after=x`, { ...t, body: { actions: [] } }), 400, 'M_UNKNOWN');
        // enabled / actions.
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/x/enabled`, { ...t, body: {} }), 400, 'M_MISSING_PARAM');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/x/enabled`, { ...t, body: { enabled: 'no' } }), 400, 'M_BAD_JSON');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/x/actions`, { ...t, body: { actions: ['bogus'] } }), 400, 'M_INVALID_PARAM');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/nope/enabled`, { ...t, body: { enabled: true } }), 404, 'M_NOT_FOUND');
        expectMatrixError(await hs.request('PUT', `${RULES}/global/override/.m.rule.nope/enabled`, { ...t, body: { enabled: true } }), 404, 'M_NOT_FOUND');
        // A default of another kind is not found under this kind.
        expectMatrixError(await hs.request('PUT', `${RULES}/global/underride/.m.rule.master/enabled`, { ...t, body: { enabled: true } }), 404, 'M_NOT_FOUND');
        expectMatrixError(await hs.request('GET', `${RULES}/global/override/${'z'.repeat(400)}`, t), 404, 'M_NOT_FOUND');
        expectMatrixError(await hs.request('GET', `${RULES}/global/override/a%00b`, t), 404, 'M_NOT_FOUND');
      },
      TABLES,
    );
    // Nothing of the failed requests shows.
    const g = (await hs.request('GET', `${RULES}/`, t)).body.global;
    expect(ids(g.override)).toEqual(['.m.rule.master', 'x', ...OVERRIDE_IDS.slice(1)]);
    expect(g.override[0].enabled).toBe(false);
  });

  it('needs an access token; guests are refused', async () => {
    expectMatrixError(await hs.request('GET', `${RULES}/`), 401, 'M_MISSING_TOKEN');
    const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    expect(guest.status).toBe(200);
    expectMatrixError(await hs.request('GET', `${RULES}/`, { token: guest.body.access_token }), 403, 'M_GUEST_ACCESS_FORBIDDEN');
  });
});
