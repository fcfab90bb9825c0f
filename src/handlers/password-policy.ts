// password_config.policy, with Synapse's rules. Failures are M_WEAK_PASSWORD (spec).

import type { PasswordPolicy } from '../config/types.js';
import { badJson, MatrixError } from '../errors.js';

/** Synapse refuses passwords over 512 characters outright (they only slow hashing). */
export const MAX_PASSWORD_LENGTH = 512;

export function checkPassword(password: string, policy: PasswordPolicy): void {
  if (password.length > MAX_PASSWORD_LENGTH) throw badJson(`Password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  if (!policy.enabled) return;
  const weak = (why: string) => new MatrixError(400, 'M_WEAK_PASSWORD', why);
  if ([...password].length < policy.minimum_length) throw weak(`Password must be at least ${policy.minimum_length} characters`);
  if (policy.require_digit && !/\p{Nd}/u.test(password)) throw weak('Password must contain a digit');
  if (policy.require_symbol && !/[^\p{L}\p{N}]/u.test(password)) throw weak('Password must contain a symbol');
  if (policy.require_uppercase && !/\p{Lu}/u.test(password)) throw weak('Password must contain an uppercase letter');
  if (policy.require_lowercase && !/\p{Ll}/u.test(password)) throw weak('Password must contain a lowercase letter');
}

/**
 * GET /_matrix/client/v3/password_policy (MSC2000, as Synapse serves it): the
 * rules of password_config.policy under `m.`-prefixed keys, so that clients can
 * show them before the user submits. {} when the policy is off (or passwords are).
 */
export function describePasswordPolicy(passwordsEnabled: boolean, policy: PasswordPolicy): Record<string, number | boolean> {
  if (!passwordsEnabled || !policy.enabled) return {};
  return {
    'm.minimum_length': policy.minimum_length,
    'm.require_digit': policy.require_digit,
    'm.require_symbol': policy.require_symbol,
    'm.require_lowercase': policy.require_lowercase,
    'm.require_uppercase': policy.require_uppercase,
  };
}
