// security.crlFile: the revocation list the daemon would load, read and verified the way it does at start.
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { CrlRevocations } from "../api/crl.js";
import { failFrom, ok, warn, type CheckResult } from "./check.js";

const ID = "certs.crl";
const TITLE = "revocation list";

/** Loads security.crlFile as the daemon does (a failure here is a daemon that refuses to start). */
export async function checkCrl(config: DaemonConfig): Promise<CheckResult> {
  if (!config.crlFile) return ok(ID, TITLE, "none (security.crlFile not set)");
  const warnings: string[] = [];
  const quiet = { info: () => undefined, warn: (_obj: unknown, msg?: string) => void warnings.push(msg ?? ""), error: () => undefined };
  try {
    const crl = await CrlRevocations.open(config.crlFile, config.tls.caPem, quiet);
    crl.close();
    const found = `${config.crlFile} is signed by the CA and revokes ${crl.size} certificate${crl.size === 1 ? "" : "s"}`;
    if (warnings.length === 0) return ok(ID, TITLE, found);
    return warn(ID, TITLE, `${found}; ${warnings[0]}`, "publish a new CRL (openssl ca -gencrl) and replace the file; the daemon picks it up within a second");
  } catch (err) {
    return failFrom(ID, TITLE, err, "fix or remove security.crlFile: the daemon does not start with a CRL it cannot verify");
  }
}
