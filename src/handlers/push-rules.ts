// Push rules (spec: Client-Server API, "Push Rules: API"): the server-default
// rules merged with the user's own rules and their changes to the defaults.

import type { Knex } from 'knex';
import { defaultRules, PREPENDED_DEFAULTS, type PushAction, type PushRule, RULE_KINDS, type RuleKind } from '../domain/push-rules.js';
import { parseUserId } from '../domain/user-ids.js';
import { badJson, invalidParam, MatrixError, missingParam, notFound } from '../errors.js';
import * as Push from '../repositories/push.js';

/** Longest rule ID (the column's size). */
const MAX_RULE_ID = 255;
/** Most actions or conditions in one rule: far beyond any real rule, and each costs evaluation time. */
const MAX_ITEMS = 100;
/** The action strings (`dont_notify` and `coalesce` are deprecated no-ops, still accepted as Synapse does). */
const ACTIONS = new Set(['notify', 'dont_notify', 'coalesce']);

export type Ruleset = Record<RuleKind, PushRule[]>;

const ruleNotFound = () => notFound('Unknown push rule');

/** The rule kind of a path; another value is 400 M_UNRECOGNIZED (as Synapse). */
export function ruleKind(raw: string): RuleKind {
  if (!(RULE_KINDS as readonly string[]).includes(raw)) throw new MatrixError(400, 'M_UNRECOGNIZED', `Unknown push rule kind: ${raw}`);
  return raw as RuleKind;
}

/** Whether a rule ID could name a stored rule (longer ones and NUL characters never can). */
const storable = (ruleId: string) => ruleId.length <= MAX_RULE_ID && !ruleId.includes('\u0000');

export interface PutRuleRequest {
  kind: RuleKind;
  ruleId: string;
  body: Record<string, unknown>;
  before: string | null;
  after: string | null;
}

export class PushRuleHandler {
  constructor(private readonly db: Knex) {}

  /**
   * The user's whole rule set, `{override, content, room, sender, underride}`,
   * each kind in evaluation order: `.m.rule.master`, then the user's rules
   * (most important first), then the other server-default rules of that kind.
   */
  async ruleset(userId: string): Promise<Ruleset> {
    return this.db.transaction(async (trx) => {
      const [own, changes] = await Promise.all([Push.userRules(trx, userId), Push.defaultChanges(trx, userId)]);
      const defaults = defaultRules(userId, parseUserId(userId)?.localpart ?? userId);
      const out = {} as Ruleset;
      for (const kind of RULE_KINDS) {
        const merged = defaults[kind].map((r) => withChanges(r, changes.get(r.rule_id)));
        const mine = own.filter((r) => r.kind === kind).map((r) => formatOwn(kind, r));
        out[kind] = [...merged.filter((r) => PREPENDED_DEFAULTS.has(r.rule_id)), ...mine, ...merged.filter((r) => !PREPENDED_DEFAULTS.has(r.rule_id))];
      }
      return out;
    });
  }

  /** One rule, or 404 M_NOT_FOUND. */
  async rule(userId: string, kind: RuleKind, ruleId: string): Promise<PushRule> {
    const found = (await this.ruleset(userId))[kind].find((r) => r.rule_id === ruleId);
    if (!found) throw ruleNotFound();
    return found;
  }

  /**
   * Creates or replaces one of the user's rules. Rule IDs starting with "."
   * (the server's), or holding "/" or "\", are 400 M_INVALID_PARAM; `actions`
   * is required (strings `notify`, `dont_notify`, `coalesce`, or
   * `{set_tweak, value?}` objects); content rules need `pattern`;
   * override and underride rules take `conditions` (objects with a string
   * `kind`). `before` wins over `after`; either must name one of the user's own
   * rules of this kind, else 400 M_UNKNOWN (spec). A new rule without either
   * becomes the most important of its kind; an updated one keeps its place.
   */
  async putRule(userId: string, req: PutRuleRequest): Promise<void> {
    const { kind, ruleId, body } = req;
    if (ruleId.startsWith('.')) throw invalidParam('Rule IDs starting with "." are reserved for server-default rules');
    if (ruleId === '' || ruleId.includes('/') || ruleId.includes('\\')) throw invalidParam('Rule IDs cannot be empty nor hold "/" or "\\"');
    if (!storable(ruleId)) throw invalidParam(`Rule IDs must be at most ${MAX_RULE_ID} characters, without NUL`);
    const actions = checkActions(body.actions);
    let conditions: Record<string, unknown>[] | null = null;
    let pattern: string | null = null;
    if (kind === 'override' || kind === 'underride') conditions = checkConditions(body.conditions);
    if (kind === 'content') {
      if (body.pattern === undefined || body.pattern === null) throw missingParam('Content rules need a pattern');
      if (typeof body.pattern !== 'string') throw badJson('pattern must be a string');
      if (body.pattern.includes('\u0000')) throw badJson('pattern must not contain NUL characters');
      pattern = body.pattern;
    }
    const anchor = req.before ?? req.after;
    await this.db.transaction(async (trx) => {
      const existing = await Push.userRule(trx, userId, kind, ruleId);
      const others = (await Push.userRules(trx, userId, kind)).filter((r) => r.rule_id !== ruleId);
      let priority: number;
      if (anchor !== null) {
        const at = others.findIndex((r) => r.rule_id === anchor);
        if (at < 0) throw new MatrixError(400, 'M_UNKNOWN', `before/after rule not found: ${anchor}`);
        const order = others.map((r) => r.rule_id);
        order.splice(req.before !== null ? at : at + 1, 0, ruleId);
        // Most important first: the highest priority.
        for (const [i, id] of order.entries()) if (id !== ruleId) await Push.setRulePriority(trx, userId, kind, id, order.length - i);
        priority = order.length - order.indexOf(ruleId);
      } else if (existing) priority = existing.priority;
      else priority = others.reduce((max, r) => Math.max(max, r.priority), 0) + 1;
      // As Synapse: a replaced rule keeps whether it was enabled; a new one is enabled (spec).
      await Push.upsertRule(trx, userId, { kind, rule_id: ruleId, priority, conditions, pattern, actions, enabled: existing?.enabled ?? true });
    });
  }

  /** Deletes one of the user's rules; server-default rules and unknown ones are 404 M_NOT_FOUND. */
  async deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<void> {
    if (!storable(ruleId) || !(await Push.deleteRule(this.db, userId, kind, ruleId))) throw ruleNotFound();
  }

  /** Enables or disables a rule, the user's or a server default (stored as the user's change); 404 when there is none. */
  async setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<void> {
    await this.change(userId, kind, ruleId, { enabled });
  }

  /** Replaces a rule's actions (validated as for putRule); 404 when there is none. */
  async setActions(userId: string, kind: RuleKind, ruleId: string, raw: unknown): Promise<void> {
    await this.change(userId, kind, ruleId, { actions: checkActions(raw) });
  }

  private async change(userId: string, kind: RuleKind, ruleId: string, change: { enabled?: boolean; actions?: PushAction[] }): Promise<void> {
    if (!storable(ruleId)) throw ruleNotFound();
    if (ruleId.startsWith('.')) {
      const isDefault = defaultRules(userId, '')[kind].some((r) => r.rule_id === ruleId);
      if (!isDefault) throw ruleNotFound();
      await Push.changeDefault(this.db, userId, ruleId, change);
      return;
    }
    if (!(await Push.updateRule(this.db, userId, kind, ruleId, change))) throw ruleNotFound();
  }
}

function withChanges(rule: PushRule, change: Push.DefaultChange | undefined): PushRule {
  if (!change) return rule;
  return { ...rule, enabled: change.enabled ?? rule.enabled, actions: (change.actions as PushAction[] | null) ?? rule.actions };
}

/** A stored rule as the spec's PushRule: room and sender rules carry neither conditions nor pattern (as Synapse). */
function formatOwn(kind: RuleKind, r: Push.UserRuleRow): PushRule {
  const out: PushRule = { rule_id: r.rule_id, default: false, enabled: r.enabled, actions: r.actions as PushAction[] };
  if (kind === 'override' || kind === 'underride') out.conditions = (r.conditions ?? []) as Record<string, unknown>[];
  if (kind === 'content') out.pattern = r.pattern ?? '';
  return out;
}

function checkActions(raw: unknown): PushAction[] {
  if (raw === undefined || raw === null) throw missingParam('Missing parameter: actions');
  if (!Array.isArray(raw)) throw badJson('actions must be an array');
  if (raw.length > MAX_ITEMS) throw badJson(`actions may hold at most ${MAX_ITEMS} items`);
  for (const a of raw) {
    if (typeof a === 'string') {
      if (!ACTIONS.has(a)) throw invalidParam(`Unknown action: ${a}`);
    } else if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof (a as Record<string, unknown>).set_tweak !== 'string') {
      throw invalidParam('Each action is a string or an object with a string set_tweak');
    }
  }
  return raw as PushAction[];
}

function checkConditions(raw: unknown): Record<string, unknown>[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badJson('conditions must be an array');
  if (raw.length > MAX_ITEMS) throw badJson(`conditions may hold at most ${MAX_ITEMS} items`);
  for (const c of raw) {
    if (typeof c !== 'object' || c === null || Array.isArray(c) || typeof (c as Record<string, unknown>).kind !== 'string')
      throw invalidParam('Each condition is an object with a string kind');
  }
  return raw as Record<string, unknown>[];
}
