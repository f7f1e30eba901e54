// Signal names for exit statuses. conmon records a job killed by signal N as exit code 128+N (the shell's
// convention), so the code alone cannot tell `kill -9` from `exit 137`: the service names a signal only
// when it knows one was sent (a stop, the OOM killer).
import { constants } from "node:os";

const NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** "SIGTERM" for 15; undefined for numbers that are not signals. */
export function signalName(n: number): string | undefined {
  return NAMES.get(n);
}
