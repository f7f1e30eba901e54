// security.crlFile: a certificate revocation list (X.509 CRL, PEM or DER) signed by the Joblet CA. Client
// certificates whose serial it lists are refused with PERMISSION_DENIED. The file is checked once a second
// (stat): an operator revokes by replacing it, without a restart. A replacement is used only once it parsed
// and its signature verified against the CA; until then, and whenever it is unreadable or invalid, the last
// good list stays in force and the failure is logged.
//
// A CRL's nextUpdate passing does not unrevoke anything: the listed serials stay refused (revocation is
// permanent) and a warning says the list is stale; refusing every client instead would turn a late CRL into
// an outage.
import "reflect-metadata";
import { readFileSync, statSync, type Stats } from "node:fs";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { Logger } from "pino";
import { JobletError } from "../../shared/errors.js";
import { normalizeSerial } from "../../shared/config/daemon.js";
import type { RevocationCheck } from "./auth.js";

const crypto = webcrypto as unknown as Crypto;
/** How often the file's metadata is checked for a change, ms: the delay before a revocation applies. */
const WATCH_INTERVAL_MS = 1_000;

/** What one good CRL said, and the file's metadata when it was read. */
interface CrlContents {
  stat: Stats;
  /** Normalised serials (lowercase hex, no leading zeros). */
  serials: ReadonlySet<string>;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

/** The revocation list in security.crlFile, kept current while the daemon runs. */
export class CrlRevocations implements RevocationCheck {
  private contents: CrlContents;
  /** Metadata of the last version tried (good or not), so that a bad file is reported once, not every second. */
  private tried: Stats;
  /** The failure last logged for the version tried, so that a file that stays unreadable is reported once. */
  private lastError = "";
  private reloading: Promise<void> = Promise.resolve();
  private staleWarned = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    /** The CRL's path (security.crlFile). */
    readonly file: string,
    private readonly ca: x509.X509Certificate,
    private readonly log: Pick<Logger, "info" | "warn" | "error">,
    contents: CrlContents,
  ) {
    this.contents = contents;
    this.tried = contents.stat;
    // Polled, not fs.watch: a replacement by rename, an edit in place and a deletion all show in stat, and
    // the comparison is with the version read, so a change just before the first poll is not missed.
    this.timer = setInterval(() => this.check(), WATCH_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Reads and verifies the CRL at `file` against the CA certificate `caPem`, then watches it. Throws
   * FAILED_PRECONDITION naming security.crlFile when it cannot be read, is not a CRL, or is not signed by
   * that CA: the daemon must not start with a revocation list it cannot trust.
   */
  static async open(file: string, caPem: string, log: Pick<Logger, "info" | "warn" | "error">): Promise<CrlRevocations> {
    const ca = new x509.X509Certificate(caPem);
    const contents = await readCrl(file, ca);
    const crl = new CrlRevocations(file, ca, log, contents);
    crl.warnIfStale();
    log.info({ file, revoked: contents.serials.size, thisUpdate: contents.thisUpdate, nextUpdate: contents.nextUpdate }, "certificate revocation list loaded");
    return crl;
  }

  /** Whether the CRL lists `serial` (normalised as normalizeSerial does). */
  has(serial: string): boolean {
    this.warnIfStale();
    return this.contents.serials.has(serial);
  }

  /** How many serials the list in force holds. */
  get size(): number {
    return this.contents.serials.size;
  }

  /** Resolves once every reload started so far has finished (for tests and shutdown). */
  settled(): Promise<void> {
    return this.reloading;
  }

  /** Stops following the file; the list in force stays. */
  close(): void {
    clearInterval(this.timer);
  }

  /** Starts a reload when the file's metadata differs from the version last tried. */
  private check(): void {
    let stat: Stats;
    try {
      stat = statSync(this.file);
    } catch (err) {
      this.failed(err);
      return;
    }
    if (sameVersion(stat, this.tried)) return;
    this.tried = stat;
    this.lastError = "";
    this.reloading = this.reloading.then(() => this.reload());
  }

  private async reload(): Promise<void> {
    try {
      const next = await readCrl(this.file, this.ca);
      const before = this.contents.serials.size;
      this.contents = next;
      this.tried = next.stat;
      this.lastError = "";
      this.staleWarned = false;
      this.log.info({ file: this.file, revoked: next.serials.size, before, thisUpdate: next.thisUpdate, nextUpdate: next.nextUpdate }, "certificate revocation list reloaded");
      this.warnIfStale();
    } catch (err) {
      this.failed(err);
    }
  }

  private failed(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (message === this.lastError) return;
    this.lastError = message;
    this.log.error({ err, file: this.file, revoked: this.contents.serials.size }, "the changed certificate revocation list was not loaded; the previous one stays in force");
  }

  private warnIfStale(): void {
    const next = this.contents.nextUpdate;
    if (this.staleWarned || !next || next.getTime() > Date.now()) return;
    this.staleWarned = true;
    this.log.warn({ file: this.file, nextUpdate: next }, "the certificate revocation list is past its nextUpdate; its serials stay refused, publish a new one");
  }
}

/** Reads, parses and verifies a CRL file; every failure is FAILED_PRECONDITION naming security.crlFile. */
async function readCrl(file: string, ca: x509.X509Certificate): Promise<CrlContents> {
  let bytes: Buffer;
  let stat: Stats;
  try {
    // Metadata first: if the file changes after this, the next check sees a newer version than the one read.
    stat = statSync(file);
    bytes = readFileSync(file);
  } catch (cause) {
    throw new JobletError("FAILED_PRECONDITION", `security.crlFile: cannot read ${file}: ${(cause as Error).message}`, {
      cause,
      hint: "point security.crlFile at a CRL file the daemon (root) can read, or remove the key",
    });
  }
  let crl: x509.X509Crl;
  let serials: Set<string>;
  try {
    // PEM ("-----BEGIN X509 CRL-----") or DER: the constructor takes the text or the bytes.
    const text = bytes.toString("latin1");
    crl = new x509.X509Crl(text.includes("-----BEGIN") ? text : new Uint8Array(bytes));
    serials = new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
  } catch (cause) {
    throw new JobletError("FAILED_PRECONDITION", `security.crlFile: ${file} is not an X.509 CRL in PEM or DER form: ${(cause as Error).message}`, {
      cause,
      hint: "write it with `openssl ca -gencrl` (PEM) or convert it with `openssl crl -in FILE -outform PEM`",
    });
  }
  let signedByCa: boolean;
  try {
    signedByCa = crl.issuer === ca.subject && (await crl.verify({ publicKey: ca }, crypto));
  } catch {
    signedByCa = false;
  }
  if (!signedByCa) {
    throw new JobletError(
      "FAILED_PRECONDITION",
      `security.crlFile: ${file} is not signed by the CA in security.caCert (CRL issuer "${crl.issuer}", CA "${ca.subject}")`,
      { hint: "sign the CRL with the key of the CA that issued the client certificates" },
    );
  }
  return {
    stat,
    serials,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
  };
}

/** Whether two stats are of the same version of a file (same inode, size, modification and change time). */
function sameVersion(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}
