// One error model for both programs. Every failure a user can cause or see is a JobletError with a stable
// code; the gRPC edge maps codes to status codes in one place (src/daemon/api/status.ts), the CLI maps them
// to exit codes. Anything that is not a JobletError is a bug: logged with its stack, reported as INTERNAL.

/** The failure classes; names match gRPC status names so the mapping is one-to-one. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED"
  | "UNAVAILABLE"
  | "INTERNAL";

/** A failure with a stable code, a message that says what happened, and where possible a hint on what to do. */
export class JobletError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "JobletError";
    this.code = code;
    this.hint = opts.hint;
  }
}

/** Renders a value for an error message: strings quoted, long values cut. */
export function describeValue(value: unknown): string {
  let s: string;
  if (typeof value === "string") s = JSON.stringify(value);
  else if (value === undefined) s = "nothing";
  else {
    try {
      s = JSON.stringify(value) ?? String(value);
    } catch {
      s = String(value);
    }
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** `field: expected X, got Y` as INVALID_ARGUMENT. */
export function invalidArgument(field: string, expected: string, given: unknown, hint?: string): JobletError {
  return new JobletError("INVALID_ARGUMENT", `${field}: expected ${expected}, got ${describeValue(given)}`, { hint });
}

/** True for a JobletError, optionally of the given code. */
export function isJobletError(err: unknown, code?: ErrorCode): err is JobletError {
  return err instanceof JobletError && (code === undefined || err.code === code);
}
