// SQL for push rules (the user's own rules and their changes to the defaults),
// pushers, and OpenID tokens (stored as SHA-256 hashes only).

import type { Knex } from 'knex';

export interface UserRuleRow {
  kind: string;
  rule_id: string;
  priority: number;
  conditions: unknown[] | null;
  pattern: string | null;
  actions: unknown[];
  enabled: boolean;
}

const toRule = (r: Record<string, unknown>): UserRuleRow => ({
  kind: r.kind as string,
  rule_id: r.rule_id as string,
  priority: Number(r.priority),
  conditions: r.conditions == null ? null : (JSON.parse(r.conditions as string) as unknown[]),
  pattern: (r.pattern as string | null) ?? null,
  actions: JSON.parse(r.actions as string) as unknown[],
  enabled: Boolean(r.enabled),
});

/** The user's own rules, every kind, each kind's most important first. */
export async function userRules(q: Knex, userId: string, kind?: string): Promise<UserRuleRow[]> {
  const query = q('push_rules').where({ user_id: userId });
  if (kind) query.andWhere({ kind });
  return (await query.orderBy([{ column: 'kind' }, { column: 'priority', order: 'desc' }])).map(toRule);
}

export async function userRule(q: Knex, userId: string, kind: string, ruleId: string): Promise<UserRuleRow | null> {
  const r = await q('push_rules').where({ user_id: userId, kind, rule_id: ruleId }).first();
  return r ? toRule(r) : null;
}

/** Inserts or replaces a rule's content (not its priority, unless given). */
export async function upsertRule(
  q: Knex,
  userId: string,
  rule: { kind: string; rule_id: string; priority: number; conditions: unknown[] | null; pattern: string | null; actions: unknown[]; enabled: boolean },
): Promise<void> {
  await q('push_rules')
    .insert({
      user_id: userId,
      kind: rule.kind,
      rule_id: rule.rule_id,
      priority: rule.priority,
      conditions: rule.conditions === null ? null : JSON.stringify(rule.conditions),
      pattern: rule.pattern,
      actions: JSON.stringify(rule.actions),
      enabled: rule.enabled,
    })
    .onConflict(['user_id', 'kind', 'rule_id'])
    .merge();
}

export async function setRulePriority(q: Knex, userId: string, kind: string, ruleId: string, priority: number): Promise<void> {
  await q('push_rules').where({ user_id: userId, kind, rule_id: ruleId }).update({ priority });
}

export async function updateRule(q: Knex, userId: string, kind: string, ruleId: string, change: { enabled?: boolean; actions?: unknown[] }): Promise<boolean> {
  const row: Record<string, unknown> = {};
  if (change.enabled !== undefined) row.enabled = change.enabled;
  if (change.actions !== undefined) row.actions = JSON.stringify(change.actions);
  return (await q('push_rules').where({ user_id: userId, kind, rule_id: ruleId }).update(row)) > 0;
}

export async function deleteRule(q: Knex, userId: string, kind: string, ruleId: string): Promise<boolean> {
  return (await q('push_rules').where({ user_id: userId, kind, rule_id: ruleId }).delete()) > 0;
}

export interface DefaultChange {
  enabled: boolean | null;
  actions: unknown[] | null;
}

/** The user's changes to server-default rules, by rule ID. */
export async function defaultChanges(q: Knex, userId: string): Promise<Map<string, DefaultChange>> {
  const rows = await q('push_rule_defaults').where({ user_id: userId });
  return new Map(
    rows.map((r) => [
      r.rule_id as string,
      { enabled: r.enabled == null ? null : Boolean(r.enabled), actions: r.actions == null ? null : (JSON.parse(r.actions as string) as unknown[]) },
    ]),
  );
}

export async function changeDefault(q: Knex, userId: string, ruleId: string, change: { enabled?: boolean; actions?: unknown[] }): Promise<void> {
  const row: Record<string, unknown> = {};
  if (change.enabled !== undefined) row.enabled = change.enabled;
  if (change.actions !== undefined) row.actions = JSON.stringify(change.actions);
  await q('push_rule_defaults')
    .insert({ user_id: userId, rule_id: ruleId, enabled: null, actions: null, ...row })
    .onConflict(['user_id', 'rule_id'])
    .merge(Object.keys(row));
}

// ---- Pushers

export interface PusherRow {
  user_id: string;
  device_id: string;
  app_id: string;
  pushkey: string;
  kind: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string | null;
  lang: string;
  data: Record<string, unknown>;
}

export async function pushersOf(q: Knex, userId: string): Promise<PusherRow[]> {
  const rows = await q('pushers').where({ user_id: userId }).orderBy('id');
  return rows.map((r) => ({
    user_id: r.user_id as string,
    device_id: r.device_id as string,
    app_id: r.app_id as string,
    pushkey: r.pushkey as string,
    kind: r.kind as string,
    app_display_name: r.app_display_name as string,
    device_display_name: r.device_display_name as string,
    profile_tag: (r.profile_tag as string | null) ?? null,
    lang: r.lang as string,
    data: JSON.parse(r.data as string) as Record<string, unknown>,
  }));
}

/** Creates or updates the user's pusher for (app_id, pushkey). */
export async function upsertPusher(q: Knex, p: PusherRow, now: number): Promise<void> {
  await q('pushers')
    .insert({ ...p, data: JSON.stringify(p.data), created_ts: now })
    .onConflict(['app_id', 'pushkey', 'user_id'])
    .merge(['device_id', 'kind', 'app_display_name', 'device_display_name', 'profile_tag', 'lang', 'data']);
}

export async function deletePusher(q: Knex, userId: string, appId: string, pushkey: string): Promise<void> {
  await q('pushers').where({ user_id: userId, app_id: appId, pushkey }).delete();
}

/** Deletes the pushers of other users with this app ID and pushkey (a device now pushes for one user only). */
export async function deleteOthersPushers(q: Knex, userId: string, appId: string, pushkey: string): Promise<void> {
  await q('pushers').where({ app_id: appId, pushkey }).andWhereNot({ user_id: userId }).delete();
}

// ---- OpenID tokens

export async function insertOpenIdToken(q: Knex, tokenHash: string, userId: string, expiresTs: number): Promise<void> {
  await q('openid_tokens').insert({ token_hash: tokenHash, user_id: userId, expires_ts: expiresTs });
}

/** The user of a token still valid at `now`, or null. */
export async function openIdUser(q: Knex, tokenHash: string, now: number): Promise<string | null> {
  // A deactivated account's tokens say nothing any more.
  const r = await q('openid_tokens')
    .join('users', 'users.user_id', 'openid_tokens.user_id')
    .where({ 'openid_tokens.token_hash': tokenHash, 'users.deactivated': false })
    .andWhere('openid_tokens.expires_ts', '>', now)
    .first('openid_tokens.user_id');
  return r ? (r.user_id as string) : null;
}

export async function deleteExpiredOpenIdTokens(q: Knex, now: number): Promise<number> {
  return q('openid_tokens').where('expires_ts', '<=', now).delete();
}
