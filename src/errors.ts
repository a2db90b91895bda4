/**
 * The error catalogue. Codes are stable and never reused; docs/operations.md and
 * docs/protocol.md list them (a test checks the docs against this table).
 *
 * Two spaces, as in centrifuge: program/operator errors (thrown, HTTP status) and
 * WebSocket close codes (what a client sees, and whether it should reconnect).
 */

export interface ErrorSpec {
  /** Message template; `%s` is replaced by the arguments in order. */
  message: string;
  /** HTTP status when it reaches an HTTP client. */
  status: number;
}

export const ERRORS = {
  ERR_CONFIG_INVALID: { message: '%s', status: 500 },
  ERR_CONFIG_UNKNOWN_KEY: { message: 'unknown option "%s" in %s', status: 500 },
  ERR_STORE_UNREACHABLE: { message: 'database unreachable (%s): %s', status: 503 },
  ERR_STORE_URL: { message: 'unsupported database URL "%s" (use sqlite:PATH or postgres://…)', status: 500 },
  ERR_AUTH_TOKEN_INVALID: { message: 'invalid token: %s', status: 401 },
  ERR_AUTH_TOKEN_MISSING: { message: 'a bearer token is required', status: 401 },
  ERR_AUTH_FORBIDDEN: { message: 'forbidden: the "%s" grant is required', status: 403 },
  ERR_UPGRADE_PROTOCOL_CONFLICT: { message: 'both X-JSON-Protocol and X-Bin-Protocol were sent', status: 400 },
  ERR_UPGRADE_ORIGIN: { message: 'origin not allowed', status: 403 },
  ERR_HTTP_BAD_REQUEST: { message: '%s', status: 400 },
  ERR_HTTP_BODY_TOO_LARGE: { message: 'request body over %s bytes', status: 413 },
  ERR_HTTP_DATA_TOO_DEEP: { message: 'data nested deeper than %s levels', status: 400 },
  ERR_TLS_LOAD: { message: 'cannot load TLS certificate or key: %s', status: 500 },
  ERR_AUDIT_FULL: { message: 'audit full', status: 507 },
  ERR_BUS_UNAVAILABLE: { message: 'the bus to the other nodes is unavailable; retry later', status: 503 }
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code and the HTTP status it maps to. */
export class ZenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, ...args: Array<string | number>) {
    const spec: ErrorSpec = ERRORS[code];
    let i = 0;
    super(spec.message.replace(/%s/g, () => String(args[i++] ?? '')));
    this.name = 'ZenError';
    this.code = code;
    this.status = spec.status;
  }
}

/**
 * The close codes zenconn's own code sends or records. 1001/1013 invite a reconnect (with
 * backoff); 1008 means the client did something it must not repeat. The WebSocket layer
 * sends 1007 and 1009 itself; docs/protocol.md lists every code a client can see.
 */
export const CloseCode = {
  /** The server is shutting down or restarting this worker: reconnect. */
  GOING_AWAY: 1001,
  /** Recorded (never sent) when a session ended without a close frame. */
  ABNORMAL: 1006,
  /** Policy violation: the inbound rate limit was exceeded and kept being exceeded. */
  POLICY: 1008,
  /** Slow consumer: the outbound buffer went over maxBufferedBytes. Reconnect later. */
  TRY_AGAIN_LATER: 1013,
  /** The session's token reached its `exp` without a `refresh`: reconnect with a fresh token. */
  TOKEN_EXPIRED: 4001,
  /** An operator closed the session (the admin dashboard or `POST /api/admin/sessions/close`). */
  CLOSED_BY_OPERATOR: 4002
} as const;
