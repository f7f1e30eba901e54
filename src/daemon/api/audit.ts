// The audit log: one JSON line per API call, allowed or denied — time, the client certificate's subject and
// serial, role, RPC, job ID and result — and one per connection refused in the TLS handshake (result
// "HANDSHAKE_REFUSED", no RPC, the peer's address and OpenSSL's reason). Opened for append only; each line is written with one write(2) call
// before the next call is recorded, so lines never interleave and a daemon crash loses at most the line
// being written.
import { closeSync, fchmodSync, openSync, writeSync } from "node:fs";
import type { CallRecord } from "./server.js";
import type { RefusedHandshake } from "./tls.js";

/** Appends call records to a file. */
export class AuditLog {
  private fd: number | undefined;

  constructor(readonly file: string) {
    this.fd = openSync(file, "a", 0o600);
    fchmodSync(this.fd, 0o600);
  }

  /** Writes one record; never throws (a failing audit write is reported once through `onError`). */
  record(call: CallRecord, onError?: (err: unknown) => void): void {
    if (this.fd === undefined) return;
    const line = JSON.stringify({
      time: new Date().toISOString(),
      subject: call.caller.subject,
      serial: call.caller.serial,
      role: call.caller.role ?? null,
      rpc: call.rpc,
      jobId: call.jobId || null,
      result: call.code,
      ...(call.details && { details: call.details }),
      ms: call.ms,
    });
    this.write(line, onError);
  }

  /** Writes one line for a connection refused in the TLS handshake; never throws. */
  recordHandshake(h: RefusedHandshake, onError?: (err: unknown) => void): void {
    this.write(
      JSON.stringify({
        time: new Date().toISOString(),
        subject: h.subject,
        serial: h.serial,
        role: null,
        rpc: null,
        jobId: null,
        result: "HANDSHAKE_REFUSED",
        details: h.reason,
        remote: h.remote,
      }),
      onError,
    );
  }

  private write(line: string, onError?: (err: unknown) => void): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, `${line}\n`);
    } catch (err) {
      onError?.(err);
    }
  }

  /** Closes the file. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
