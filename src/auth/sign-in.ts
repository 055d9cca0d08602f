import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { verifyAgainstDummy, verifyPassword } from './passwords.ts';
import { createSession, type NewSession } from './sessions.ts';
import type { UserRow } from './users.ts';

/** Consecutive failures after which an account is locked, and for how long. */
export const LOCKOUT_AFTER_FAILURES = 5;
export const LOCKOUT_SECONDS = 15 * 60;

/** Sign-in attempts allowed from one client address per window, whatever the email. */
export const ATTEMPTS_PER_ADDRESS = 20;
export const ADDRESS_WINDOW_SECONDS = 5 * 60;

const WRONG_CREDENTIALS = 'Sign-in failed: the email address or the password is wrong.';

/**
 * Password sign-in with two limits: a per-user lockout after repeated failures, stored in the
 * database so that it holds across processes, and a per-address rate limit kept in memory.
 */
export class SignInService {
  private readonly attempts = new Map<string, number[]>();

  constructor(
    private readonly db: Queryable,
    private readonly now: () => number = Date.now,
  ) {}

  async signIn(input: {
    email: string;
    password: string;
    clientAddress: string;
  }): Promise<{ session: NewSession; user: UserRow }> {
    this.countAttempt(input.clientAddress);

    const email = input.email.trim().toLowerCase();
    const [user] = await this.db.query<UserRow>('SELECT * FROM users WHERE email = $1', [email]);
    if (!user || !user.password_hash || user.disabled_at) {
      return this.failUnknown(email, input.password);
    }
    this.rejectWhileLocked(user.locked_until);

    if (!(await verifyPassword(user.password_hash, input.password))) {
      await this.db.query(
        `UPDATE users SET failed_sign_ins = failed_sign_ins + 1,
                locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN $3::timestamptz ELSE locked_until END
          WHERE id = $1`,
        [user.id, LOCKOUT_AFTER_FAILURES, new Date(this.now() + LOCKOUT_SECONDS * 1000)],
      );
      throw new AppError('unauthenticated', WRONG_CREDENTIALS);
    }

    await this.db.query('UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = $1', [
      user.id,
    ]);
    return { session: await createSession(this.db, user), user };
  }

  /** Reject a sign-in while its email address is locked out. */
  private rejectWhileLocked(lockedUntil: Date | null): void {
    if (!lockedUntil || lockedUntil.getTime() <= this.now()) return;
    const minutes = Math.ceil((lockedUntil.getTime() - this.now()) / 60_000);
    throw new AppError(
      'too_many_requests',
      `Sign-in is locked after ${LOCKOUT_AFTER_FAILURES} failed attempts; try again in ${minutes} minute(s), or ask an administrator to set a new password.`,
      { details: { retryAfterSeconds: minutes * 60 } },
    );
  }

  /**
   * Fail a sign-in for an address that has no user who may sign in with a password. It counts
   * and locks as a user's failures do, and takes as long as checking a password, so neither the
   * responses nor their timing reveal which addresses have accounts.
   */
  private async failUnknown(email: string, password: string): Promise<never> {
    const [known] = await this.db.query<{ locked_until: Date | null }>(
      'SELECT locked_until FROM sign_in_unknown_failures WHERE email = $1',
      [email],
    );
    this.rejectWhileLocked(known?.locked_until ?? null);
    await verifyAgainstDummy(password);
    const now = new Date(this.now());
    await this.db.query(
      `DELETE FROM sign_in_unknown_failures
        WHERE updated_at < $1::timestamptz - make_interval(secs => $2)
          AND (locked_until IS NULL OR locked_until < $1::timestamptz)`,
      [now, LOCKOUT_SECONDS],
    );
    await this.db.query(
      `INSERT INTO sign_in_unknown_failures (email, failed_sign_ins, locked_until, updated_at)
       VALUES ($1, 1, NULL, $4)
       ON CONFLICT (email) DO UPDATE
         SET failed_sign_ins = sign_in_unknown_failures.failed_sign_ins + 1,
             locked_until = CASE WHEN sign_in_unknown_failures.failed_sign_ins + 1 >= $2
                                 THEN $3::timestamptz
                                 ELSE sign_in_unknown_failures.locked_until END,
             updated_at = $4`,
      [email, LOCKOUT_AFTER_FAILURES, new Date(this.now() + LOCKOUT_SECONDS * 1000), now],
    );
    throw new AppError('unauthenticated', WRONG_CREDENTIALS);
  }

  private countAttempt(clientAddress: string): void {
    const now = this.now();
    const windowStart = now - ADDRESS_WINDOW_SECONDS * 1000;
    const recent = (this.attempts.get(clientAddress) ?? []).filter((time) => time > windowStart);
    if (recent.length >= ATTEMPTS_PER_ADDRESS) {
      const retryAfter = Math.ceil((recent[0]! - windowStart) / 1000);
      throw new AppError(
        'too_many_requests',
        `Too many sign-in attempts from this address; try again in ${retryAfter} seconds.`,
        {
          details: { retryAfterSeconds: retryAfter },
        },
      );
    }
    recent.push(now);
    this.attempts.set(clientAddress, recent);
    if (this.attempts.size > 10_000) this.attempts.clear();
  }
}
