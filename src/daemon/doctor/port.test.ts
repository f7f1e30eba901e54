import assert from "node:assert/strict";
import { createServer as createTcpServer, type Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { after, test } from "node:test";
import { generatePki } from "../../shared/tls/certs.js";
import { checkPorts } from "./port.js";
import { testConfig, type TestConfig } from "./test-config.js";

const made: TestConfig[] = [];
const servers: Server[] = [];
after(() => {
  made.forEach((t) => t.cleanup());
  servers.forEach((s) => s.close());
});

function listen(srv: Server): Promise<number> {
  servers.push(srv);
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve((srv.address() as { port: number }).port)));
}

async function configOn(port: number, extra: Record<string, unknown> = {}): Promise<TestConfig> {
  const t = await testConfig({ server: { address: "127.0.0.1", port }, ...extra });
  made.push(t);
  return t;
}

test("a free port is ok", async () => {
  const port = await listen(createTcpServer());
  servers.pop()!.close();
  await new Promise((r) => setTimeout(r, 50));
  const [r] = await checkPorts((await configOn(port)).config);
  assert.equal(r!.status, "ok");
  assert.equal(r!.found, `127.0.0.1:${port} is free`);
});

test("a port served with a certificate from the config's CA is a running daemon", async () => {
  const t = await configOn(1);
  const port = await listen(createTlsServer({ cert: t.pki.serverCertPem, key: t.pki.serverKeyPem, ALPNProtocols: ["h2"] }, (s) => s.end()));
  const [r] = await checkPorts({ ...t.config, server: { address: "127.0.0.1", port } });
  assert.equal(r!.status, "ok", r!.found);
  assert.match(r!.found, /in use by a daemon presenting a certificate from this config's CA/);
});

test("a port held by something else fails, naming what was seen", async () => {
  const port = await listen(createTcpServer((s) => s.end("SSH-2.0-OpenSSH\r\n")));
  const [plain] = await checkPorts((await configOn(port)).config);
  assert.equal(plain!.status, "fail");
  assert.match(plain!.found, new RegExp(`127\\.0\\.0\\.1:${port} is taken by another program \\(TLS handshake failed`));
  assert.match(plain!.hint!, /server\.port/);

  const other = await generatePki({ address: "localhost" });
  const tlsPort = await listen(createTlsServer({ cert: other.serverCertPem, key: other.serverKeyPem }, (s) => s.end()));
  const [foreign] = await checkPorts((await configOn(tlsPort)).config);
  assert.equal(foreign!.status, "fail");
  assert.match(foreign!.found, /taken by another program/);
});

test("the metrics port is checked when metrics are on", async () => {
  const apiPort = await listen(createTcpServer());
  servers.pop()!.close();
  const busy = await listen(createTcpServer((s) => s.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")));
  const rs = await checkPorts((await configOn(apiPort, { metrics: { address: `127.0.0.1:${busy}` } })).config);
  assert.deepEqual(rs.map((r) => [r.id, r.status]), [["port", "ok"], ["metrics.port", "fail"]]);
  assert.match(rs[1]!.found, /taken by another program \(GET \/metrics answered 404\)/);
});
