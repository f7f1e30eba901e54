// Test support: a real daemon config (fresh PKI) written to a temp dir, for checks that read the config.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseDaemonConfig, type DaemonConfig } from "../../shared/config/daemon.js";
import { generatePki, type Pki } from "../../shared/tls/certs.js";

/** A config whose file exists (mode 0600) in a temp dir, plus the PKI it embeds and a cleanup. */
export interface TestConfig {
  config: DaemonConfig;
  pki: Pki;
  dir: string;
  cleanup(): void;
}

/** Builds a DaemonConfig from a fresh PKI; `patch` replaces top-level sections, except `security`, which it extends. */
export async function testConfig(patch: Record<string, unknown> = {}, pkiOpts: { now?: Date } = {}): Promise<TestConfig> {
  const pki = await generatePki({ address: "localhost", ...pkiOpts });
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-doctor-unit-"));
  // As `joblet init` leaves its directory: jobs' unprivileged root may pass through to the state dir.
  chmodSync(dir, 0o711);
  const file = path.join(dir, "joblet-config.yml");
  writeFileSync(file, "# test\n", { mode: 0o600 });
  const raw = {
    version: "3.0",
    state: { dir: path.join(dir, "state") },
    ...patch,
    security: { serverCert: pki.serverCertPem, serverKey: pki.serverKeyPem, caCert: pki.caCertPem, ...(patch.security as object | undefined) },
  };
  return { config: parseDaemonConfig(raw, file), pki, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
