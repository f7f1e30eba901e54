// The daemon certificates rnx has verified, remembered so that a later connection to the same daemon can skip
// building Node's root store. Node 20 parses its ~140 bundled root certificates the first time any TLS
// context is given a `ca` (crypto_context.cc, SetCACert: it compares the context's store with the root store,
// creating that first), although rnx trusts only the node's own CA: ~25 ms of every rnx command on the 2-core
// VM, a quarter of `rnx list` (unless NODE_EXTRA_CA_CERTS is set, which makes every Node process pay it at
// start-up instead).
//
// An entry says: a connection to `address`, verified by OpenSSL against the CA `ca` (SHA-256 of its PEM
// text), was answered with the certificate whose DER has SHA-256 `sha256`, valid from `notBefore` to
// `notAfter`. A later connection to that address with that CA accepts a server presenting exactly that
// certificate, within its validity, without a chain check: TLS 1.3's CertificateVerify proves the server
// holds that certificate's key, so it is the server verified before. Anything else (no entry, another
// certificate, an expired one) goes through OpenSSL's verification as before, and is remembered if it passes.
// Revocation is checked by neither path (rnx has no CRL).
//
// The file is the user's, like the private key in their rnx config: it is read only when it is a regular file
// owned by the user and writable by nobody else, in a directory of the same kind, and replaced atomically.
import { createHash } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

/** What was verified about one daemon's certificate. */
export interface RememberedCert {
  /** SHA-256 of the certificate's DER, as Node's fingerprint256 writes it ("AB:CD:…"). */
  readonly sha256: string;
  /** Validity, milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Remembered daemon certificates, by CA and address. */
export interface VerifiedServers {
  lookup(caPem: string, address: string): RememberedCert | undefined;
  remember(caPem: string, address: string, cert: RememberedCert): void;
  forget(caPem: string, address: string): void;
}

/** At most this many entries are kept (the most recently verified); a user talks to a handful of nodes. */
const MAX_ENTRIES = 64;

interface Entry extends RememberedCert {
  readonly key: string;
}

/** The entry key: the CA's PEM text hashed (a key per installation), and the address as configured. */
function entryKey(caPem: string, address: string): string {
  return `${createHash("sha256").update(caPem).digest("hex")} ${address}`;
}

/** True when `st` is owned by this user and not writable by group or others (always true on Windows). */
function privateToUser(st: Stats): boolean {
  if (process.platform === "win32" || typeof process.getuid !== "function") return true;
  return st.uid === process.getuid() && (st.mode & 0o022) === 0;
}

/** The entries of `file`, or none when it is missing, unreadable, not private to the user or not ours. */
function readEntries(file: string): Entry[] {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return [];
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !privateToUser(st) || !privateToUser(statSync(path.dirname(file)))) return [];
    const doc = JSON.parse(readFileSync(fd, "utf8")) as { servers?: unknown };
    if (!Array.isArray(doc.servers)) return [];
    return doc.servers.filter(
      (e): e is Entry =>
        typeof e === "object" && e !== null && typeof e.key === "string" && typeof e.sha256 === "string" && Number.isFinite(e.notBefore) && Number.isFinite(e.notAfter),
    );
  } catch {
    return [];
  } finally {
    closeSync(fd);
  }
}

/** Replaces `file` with `entries` (temp file 0600, then rename); a failure only means nothing is remembered. */
function writeEntries(file: string, entries: readonly Entry[]): void {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!privateToUser(statSync(dir))) return;
    writeFileSync(tmp, `${JSON.stringify({ servers: entries }, null, 1)}\n`, { mode: 0o600, flag: "wx" });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created.
    }
  }
}

/** Verified daemon certificates kept in `file` (read once, written when an entry changes). */
export function fileVerifiedServers(file: string, now: () => number = Date.now): VerifiedServers {
  let entries: Entry[] | undefined;
  const load = (): Entry[] => (entries ??= readEntries(file));
  const store = (next: Entry[]): void => {
    entries = next.slice(-MAX_ENTRIES);
    writeEntries(file, entries);
  };
  return {
    lookup(caPem, address) {
      const key = entryKey(caPem, address);
      const e = load().find((x) => x.key === key);
      const t = now();
      return e && t >= e.notBefore && t <= e.notAfter ? { sha256: e.sha256, notBefore: e.notBefore, notAfter: e.notAfter } : undefined;
    },
    remember(caPem, address, cert) {
      const key = entryKey(caPem, address);
      const old = load().find((x) => x.key === key);
      if (old && old.sha256 === cert.sha256 && old.notBefore === cert.notBefore && old.notAfter === cert.notAfter) return;
      store([...load().filter((x) => x.key !== key), { key, ...cert }]);
    },
    forget(caPem, address) {
      const key = entryKey(caPem, address);
      if (load().some((x) => x.key === key)) store(load().filter((x) => x.key !== key));
    },
  };
}

/**
 * Where rnx keeps the file: $RNX_CACHE_DIR, else the platform's per-user cache directory (XDG_CACHE_HOME or
 * ~/.cache; ~/Library/Caches on macOS; %LOCALAPPDATA% on Windows) + "joblet". undefined (nothing remembered)
 * when RNX_CACHE_DIR is "off" or no home directory is known.
 */
export function verifiedServersFile(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, home: string | undefined): string | undefined {
  const name = "verified-servers.json";
  if (env.RNX_CACHE_DIR === "off") return undefined;
  if (env.RNX_CACHE_DIR) return path.join(env.RNX_CACHE_DIR, name);
  if (platform === "win32") return env.LOCALAPPDATA ? path.join(env.LOCALAPPDATA, "joblet", name) : undefined;
  if (!home) return undefined;
  if (platform === "darwin") return path.join(home, "Library", "Caches", "joblet", name);
  return path.join(env.XDG_CACHE_HOME || path.join(home, ".cache"), "joblet", name);
}

/** The user's verified daemon certificates (verifiedServersFile), or undefined when switched off. */
export function userVerifiedServers(): VerifiedServers | undefined {
  let home: string | undefined;
  try {
    home = homedir();
  } catch {
    home = undefined;
  }
  const file = verifiedServersFile(process.env, process.platform, home);
  return file === undefined ? undefined : fileVerifiedServers(file);
}
