// rnx's exit codes. One table, used by the error handler and printed by `rnx --help`, so scripts can tell a
// usage mistake from an unreachable server from a missing job without parsing messages.
import type { ErrorCode } from "../shared/errors.js";

/** The exit codes rnx itself uses; `rnx run` otherwise exits with the job's own code. */
export const ExitCode = {
  OK: 0,
  /** Any failure without a more specific code below (the server refused for another reason, a bug). */
  FAILURE: 1,
  /** Bad flag, value or argument, invalid config file; nothing was changed. */
  USAGE: 2,
  /** The server could not be reached or the TLS handshake failed. */
  CONNECTION: 3,
  /** The server refused the operation for this certificate's role. */
  PERMISSION: 4,
  /** Unknown job, node or config file. */
  NOT_FOUND: 5,
  /** `rnx run`: the job was stopped because it ran past its timeout (as `timeout(1)` exits). */
  TIMED_OUT: 124,
  /** `rnx run` was interrupted with Ctrl-C: rnx detached, the job keeps running. */
  INTERRUPTED: 130,
} as const;

/** The exit code for a failure of the given class. */
export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case "INVALID_ARGUMENT":
      return ExitCode.USAGE;
    case "UNAVAILABLE":
      return ExitCode.CONNECTION;
    case "PERMISSION_DENIED":
    case "UNAUTHENTICATED":
      return ExitCode.PERMISSION;
    case "NOT_FOUND":
      return ExitCode.NOT_FOUND;
    case "ALREADY_EXISTS":
    case "FAILED_PRECONDITION":
    case "RESOURCE_EXHAUSTED":
    case "INTERNAL":
      return ExitCode.FAILURE;
  }
}

/** The exit-code table as shown at the end of `rnx --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    failure without a more specific code (e.g. stopping a finished job, deleting a running one,
       too many jobs, server error)
  2    usage error: bad flag, value or argument, or an invalid config file
  3    cannot connect: server unreachable, or TLS failure (unknown CA, name mismatch, expired certificate)
  4    permission denied: the certificate's role (OU) may not do this
  5    not found: unknown job ID or prefix, unknown node, no config file
  124  rnx run: the job ran past its timeout (--timeout, or the server's joblet.jobTimeout) and was
       stopped, as timeout(1) exits; a "timed out" note is printed on stderr
  130  rnx run interrupted with Ctrl-C (rnx detached; the job keeps running; during an upload, the upload is cancelled and the job does not start)
  rnx run (without --detach) otherwise exits with the job's own exit code, as a shell would: 128+N if
  the job was killed by signal N; 137 (and a message) if it was killed for exceeding its memory limit;
  143 (SIGTERM) or 137 (SIGKILL after the grace period) if it was stopped with rnx stop; 1 if it could
  not start. Codes 1-5 from rnx itself are printed with an "rnx: error:" line on stderr.`;
