// gRPC status codes and the error a failed call ends with. Its shape (code, details, metadata) is what
// rpc-errors.ts reads to explain the failure to the user.
import { H2_CANCEL, H2_ENHANCE_YOUR_CALM, H2_INADEQUATE_SECURITY, H2_REFUSED_STREAM } from "./h2-codes.js";

/** gRPC status numbers (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** Response headers or trailers as Node's HTTP/2 hands them over. */
export type HeaderMap = Readonly<Record<string, string | string[] | number | undefined>>;

/** A call's trailing metadata, read by key (lower case); every value is a string. */
export class Metadata {
  constructor(private readonly headers: HeaderMap = {}) {}

  /** The values under `key`, none if absent. */
  get(key: string): string[] {
    const v = this.headers[key];
    if (v === undefined) return [];
    return Array.isArray(v) ? v : [String(v)];
  }
}

/** A call that ended with a non-OK status, or never reached the server. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly metadata: Metadata = new Metadata(),
  ) {
    super(`${code} ${codeName(code)}: ${details}`);
  }
}

/** "UNAVAILABLE" for 14, and so on. */
export function codeName(code: number): string {
  return Object.entries(GrpcStatus).find(([, n]) => n === code)?.[0] ?? `code ${code}`;
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md); a malformed escape leaves the text as sent. */
export function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * The status in response headers or trailers, or undefined when they carry none. A grpc-status that is not
 * a number is reported as UNKNOWN, as the spec asks of clients.
 */
export function statusFrom(headers: HeaderMap): RpcError | { code: 0 } | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const text = String(Array.isArray(raw) ? raw[0] : raw);
  const code = /^\d+$/.test(text) ? Number(text) : NaN;
  const message = headers["grpc-message"];
  const details = message === undefined ? "" : decodeGrpcMessage(String(Array.isArray(message) ? message[0] : message));
  if (Number.isNaN(code)) return new RpcError(GrpcStatus.UNKNOWN, `the server sent an invalid grpc-status "${text}"${details ? `: ${details}` : ""}`);
  if (code === 0) return { code: 0 };
  return new RpcError(code, details, new Metadata(headers));
}

/** The status for an HTTP response that is not a gRPC one (the spec's HTTP → gRPC status table). */
export function statusForHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** The status for a stream the server reset with `rstCode` before sending one (PROTOCOL-HTTP2.md's table). */
export function statusForReset(rstCode: number): RpcError {
  switch (rstCode) {
    case H2_REFUSED_STREAM:
      return new RpcError(GrpcStatus.UNAVAILABLE, "the server refused the stream (RST_STREAM REFUSED_STREAM)");
    case H2_CANCEL:
      return new RpcError(GrpcStatus.CANCELLED, "the server cancelled the call (RST_STREAM CANCEL)");
    case H2_ENHANCE_YOUR_CALM:
      return new RpcError(GrpcStatus.RESOURCE_EXHAUSTED, "the server asked to slow down (RST_STREAM ENHANCE_YOUR_CALM)");
    case H2_INADEQUATE_SECURITY:
      return new RpcError(GrpcStatus.PERMISSION_DENIED, "the server found the connection's security inadequate (RST_STREAM INADEQUATE_SECURITY)");
    default:
      return new RpcError(GrpcStatus.INTERNAL, `the server reset the stream with HTTP/2 error code ${rstCode} before sending a status`);
  }
}
