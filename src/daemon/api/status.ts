// The one place where errors become gRPC statuses. A JobletError keeps its code and message (plus the hint,
// after a newline); anything else is a bug: logged with its stack and sent as a generic INTERNAL.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { JobletError, type ErrorCode } from "../../shared/errors.js";

const CODES: Readonly<Record<ErrorCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};

/** Converts any thrown value into the status a client sees; unknown errors are logged with their stack. */
export function toServiceError(err: unknown, log: Logger, rpc: string): Partial<ServiceError> {
  if (err instanceof JobletError && err.code !== "INTERNAL") {
    const metadata = new Metadata();
    // Metadata values must be printable ASCII (grpc-js throws otherwise, and the throw crashed the daemon).
    if (err.hint) metadata.set("joblet-hint", err.hint.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
    return { code: CODES[err.code], details: err.message, metadata };
  }
  log.error({ err, rpc }, "internal error");
  return { code: status.INTERNAL, details: `internal error in ${rpc}; the daemon's log has the details` };
}

/** The status's name as audit records and logs show it: "NOT_FOUND" for status.NOT_FOUND. */
export function statusName(code: number | undefined): string {
  return (code !== undefined && status[code]) || "UNKNOWN";
}

/** Milliseconds since `start` (a performance.now() value), to 0.01 ms. */
export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}
