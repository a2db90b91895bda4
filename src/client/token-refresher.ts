/**
 * Keeps a session's token fresh: before the token's `exp` it asks `getToken` for a new
 * one and sends it in a `refresh` frame (docs/protocol.md, Refreshing the token), and
 * matches the answers (`refreshed`, or an `error` on `*`) to the refreshes sent, in order.
 */
import { ZenError } from './errors.js';

/** The reasons of an `error` on `*` that answer a `refresh`. */
export const REFRESH_REASONS: readonly string[] = ['token expired', 'token rejected', 'token for another user', 'anonymous session'];

/** What the refresher needs of its client. */
export interface RefresherPort {
  /** Sends a `refresh` frame when connected; false when not. */
  sendRefresh(token: string): boolean;
  /** A scheduled refresh failed (getToken threw, or the server refused the token). */
  onFailure(err: ZenError): void;
}

export class TokenRefresher {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private waiting: Array<{ token: string; resolve(exp: number | null): void; reject(err: ZenError): void }> = [];
  /** The token the session holds now (the last one accepted). */
  token: string | undefined;

  constructor(
    private readonly port: RefresherPort,
    initial: string | undefined,
    private readonly getToken: (() => string | Promise<string>) | undefined,
    /** Refresh this long before `exp`, at most half the time left. */
    private readonly beforeMs: number
  ) {
    this.token = initial;
  }

  /** A token for a new connection: from getToken when there is one, else the current one. */
  async forConnection(): Promise<string | undefined> {
    if (this.getToken) this.token = await this.getToken();
    return this.token;
  }

  /** Plans the next refresh for a token expiring at `exp` (seconds; null: never). Only with getToken. */
  schedule(exp: number | null): void {
    this.cancel();
    if (exp === null || !this.getToken) return;
    const left = exp * 1000 - Date.now();
    const before = Math.min(this.beforeMs, left / 2);
    this.timer = setTimeout(() => void this.scheduled(), Math.max(0, left - before));
  }

  /** Plans the refresh of the current token (on a new session). */
  scheduleCurrent(): void {
    this.schedule(this.token ? jwtExp(this.token) : null);
  }

  /** Sends `token` now; resolves with its `exp` once the server took it (it then becomes the current token). */
  refresh(token: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      if (!this.port.sendRefresh(token)) {
        reject(new ZenError('disconnected', 'not connected'));
        return;
      }
      this.waiting.push({ token, resolve, reject });
    });
  }

  /** A `refreshed` frame. */
  accepted(exp: number | null): void {
    const w = this.waiting.shift();
    if (w) this.token = w.token;
    this.schedule(exp);
    w?.resolve(exp);
  }

  /** An `error` on `*`: true when it answers a refresh (and was handled). */
  refused(errors: string[]): boolean {
    if (this.waiting.length === 0 || !errors.some((e) => REFRESH_REASONS.includes(e))) return false;
    this.waiting.shift()!.reject(new ZenError('token', `token refresh refused: ${errors.join(', ')}`, errors));
    return true;
  }

  /** The connection ended: no answer will come; nothing planned. */
  fail(err: ZenError): void {
    this.cancel();
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async scheduled(): Promise<void> {
    try {
      await this.refresh(await this.getToken!());
    } catch (err) {
      this.port.onFailure(err instanceof ZenError ? err : new ZenError('token', `getToken failed: ${(err as Error).message}`));
    }
  }
}

/** The `exp` claim of a JWT (seconds), or null when it has none or is not a JWT. */
export function jwtExp(token: string): number | null {
  try {
    const part = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}
