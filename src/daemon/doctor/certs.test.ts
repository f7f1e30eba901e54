import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { after, test } from "node:test";
import { parseDaemonConfig } from "../../shared/config/daemon.js";
import { generatePki } from "../../shared/tls/certs.js";
import { checkCertificates } from "./certs.js";
import { testConfig, type TestConfig } from "./test-config.js";

const made: TestConfig[] = [];
after(() => made.forEach((t) => t.cleanup()));
async function make(...args: Parameters<typeof testConfig>): Promise<TestConfig> {
  const t = await testConfig(...args);
  made.push(t);
  return t;
}

const byId = (rs: ReturnType<typeof checkCertificates>, id: string) => rs.find((r) => r.id === id);

test("a fresh PKI passes: valid, key matches, issued by the CA, config 0600", async () => {
  const { config } = await make();
  const rs = checkCertificates(config);
  assert.deepEqual(rs.map((r) => [r.id, r.status]), [["certs", "ok"], ["certs.ca", "ok"], ["certs.keyfile", "ok"]]);
  assert.match(byId(rs, "certs")!.found, /valid until \d{4}-\d\d-\d\d \(36\d days\), for DNS:localhost.*key matches, issued by the CA/);
});

test("a certificate expiring within 30 days warns; an expired one fails; one not yet valid fails", async () => {
  const { config } = await make();
  const day = 86_400_000;
  const notAfter = new Date(byId(checkCertificates(config), "certs")!.found.match(/valid until (\S+)/)![1]!);
  const soon = checkCertificates(config, new Date(notAfter.getTime() - 10 * day));
  assert.equal(byId(soon, "certs")!.status, "warn");
  assert.match(byId(soon, "certs")!.found, /expires in (9|10) days/);
  assert.match(byId(soon, "certs")!.hint!, /joblet init --dir DIR --force/);
  const late = checkCertificates(config, new Date(notAfter.getTime() + 2 * day));
  assert.equal(byId(late, "certs")!.status, "fail");
  assert.match(byId(late, "certs")!.found, /expired on/);
  const early = checkCertificates(config, new Date(Date.now() - 2 * day));
  assert.equal(byId(early, "certs")!.status, "fail");
  assert.match(byId(early, "certs")!.hint!, /clock/);
});

test("a key of another certificate, or a certificate of another CA, fails", async () => {
  const { config, pki } = await make();
  const other = await generatePki({ address: "localhost" });
  const raw = (sec: Record<string, string>) =>
    parseDaemonConfig({ version: "3.0", security: { serverCert: pki.serverCertPem, serverKey: pki.serverKeyPem, caCert: pki.caCertPem, ...sec } }, config.file);
  const wrongKey = checkCertificates(raw({ serverKey: other.serverKeyPem }));
  assert.equal(wrongKey[0]!.status, "fail");
  assert.match(wrongKey[0]!.found, /security\.serverKey does not belong to security\.serverCert/);
  const wrongCa = checkCertificates(raw({ caCert: other.caCertPem }));
  assert.equal(wrongCa[0]!.status, "fail");
  assert.match(wrongCa[0]!.found, /was not issued by security\.caCert/);
});

test("the config file's mode: world-readable fails, group-readable warns", async () => {
  const { config } = await make();
  chmodSync(config.file, 0o644);
  const world = byId(checkCertificates(config), "certs.keyfile")!;
  assert.equal(world.status, "fail");
  assert.match(world.found, /mode 0644/);
  assert.equal(world.hint, `chmod 600 ${config.file}`);
  chmodSync(config.file, 0o640);
  assert.equal(byId(checkCertificates(config), "certs.keyfile")!.status, "warn");
});
