// The server-default push rules (spec: Client-Server API, "Predefined rules"),
// in the spec's order, for one user. Only user changes are stored; these are
// merged with them on every read.

export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export type PushAction = string | Record<string, unknown>;

/** A push rule as the spec's PushRule: conditions for override/underride, pattern for content. */
export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: PushAction[];
  conditions?: Record<string, unknown>[];
  pattern?: string;
}

const notify = 'notify';
const sound = (value: string) => ({ set_tweak: 'sound', value });
const highlight = { set_tweak: 'highlight' };
const noHighlight = { set_tweak: 'highlight', value: false };
const match = (key: string, pattern: string) => ({ kind: 'event_match', key, pattern });
const rule = (rule_id: string, conditions: Record<string, unknown>[], actions: PushAction[], enabled = true): PushRule => ({
  rule_id,
  default: true,
  enabled,
  conditions,
  actions,
});

/**
 * The predefined rules of each kind for `userId` (whose localpart is
 * `localpart`). `.m.rule.master` is the first override rule and comes before
 * the user's own override rules; every other default comes after the user's
 * rules of its kind. The deprecated `.m.rule.contains_display_name`,
 * `.m.rule.roomnotif` and `.m.rule.contains_user_name` are still sent, as the
 * spec lists them and Synapse sends them (older clients rely on them).
 */
export function defaultRules(userId: string, localpart: string): Record<RuleKind, PushRule[]> {
  return {
    override: [
      rule('.m.rule.master', [], [], false),
      rule('.m.rule.suppress_notices', [match('content.msgtype', 'm.notice')], []),
      rule(
        '.m.rule.invite_for_me',
        [match('type', 'm.room.member'), match('content.membership', 'invite'), match('state_key', userId)],
        [notify, sound('default'), noHighlight],
      ),
      rule('.m.rule.member_event', [match('type', 'm.room.member')], []),
      rule(
        '.m.rule.is_user_mention',
        [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
        [notify, sound('default'), highlight],
      ),
      rule('.m.rule.contains_display_name', [{ kind: 'contains_display_name' }], [notify, sound('default'), highlight]),
      rule(
        '.m.rule.is_room_mention',
        [
          { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
          { kind: 'sender_notification_permission', key: 'room' },
        ],
        [notify, highlight],
      ),
      rule('.m.rule.roomnotif', [{ kind: 'sender_notification_permission', key: 'room' }, match('content.body', '@room')], [notify, highlight]),
      rule('.m.rule.tombstone', [match('type', 'm.room.tombstone'), match('state_key', '')], [notify, highlight]),
      rule('.m.rule.reaction', [match('type', 'm.reaction')], []),
      rule('.m.rule.room.server_acl', [match('type', 'm.room.server_acl'), match('state_key', '')], []),
      rule('.m.rule.suppress_edits', [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }], []),
    ],
    content: [
      { rule_id: '.m.rule.contains_user_name', default: true, enabled: true, pattern: localpart, actions: [notify, sound('default'), highlight] },
    ],
    room: [],
    sender: [],
    underride: [
      rule('.m.rule.call', [match('type', 'm.call.invite')], [notify, sound('ring'), noHighlight]),
      rule(
        '.m.rule.encrypted_room_one_to_one',
        [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.encrypted')],
        [notify, sound('default'), noHighlight],
      ),
      rule('.m.rule.room_one_to_one', [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.message')], [notify, sound('default'), noHighlight]),
      rule('.m.rule.message', [match('type', 'm.room.message')], [notify, noHighlight]),
      rule('.m.rule.encrypted', [match('type', 'm.room.encrypted')], [notify, noHighlight]),
    ],
  };
}

/** Rules that come before the user's own rules of their kind (only the master rule). */
export const PREPENDED_DEFAULTS = new Set(['.m.rule.master']);
