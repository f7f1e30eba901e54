import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { generatePki, type Pki } from "../../shared/tls/certs.js";
import { startMetricsServer, type MetricsServer } from "./server.js";

const logger = pino({ level: "silent" });
let pki: Pki;
const servers: MetricsServer[] = [];
before(async () => {
  pki = await generatePki({ address: "localhost" });
});
after(async () => {
  for (const s of servers) await s.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, opts: { method?: string; cert?: string; key?: string; ca?: string } = {}): Promise<Reply> {
  const req = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { method: opts.method ?? "GET", cert: opts.cert, key: opts.key, ca: opts.ca, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on("error", reject);
    r.end();
  });
}

test("plain HTTP: GET /metrics returns the rendered text with the exposition content type", async () => {
  let scrapes = 0;
  const s = await startMetricsServer({ host: "127.0.0.1", port: 0, logger, render: () => `# TYPE x counter\nx ${++scrapes}\n` });
  servers.push(s);
  const r = await get(`http://127.0.0.1:${s.port}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(r.body, "# TYPE x counter\nx 1\n");
  assert.equal((await get(`http://127.0.0.1:${s.port}/metrics?x=1`)).body, "# TYPE x counter\nx 2\n", "rendered per scrape");
  assert.equal((await get(`http://127.0.0.1:${s.port}/`)).status, 404);
  assert.equal((await get(`http://127.0.0.1:${s.port}/metrics`, { method: "POST" })).status, 405);
  const head = await get(`http://127.0.0.1:${s.port}/metrics`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, "");
});

test("a render failure is a 500, not a crash", async () => {
  const s = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    render: () => {
      throw new Error("boom");
    },
  });
  servers.push(s);
  assert.equal((await get(`http://127.0.0.1:${s.port}/metrics`)).status, 500);
});

test("TLS: serves with the server certificate and requires a client certificate from the same CA", async () => {
  const s = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, caPem: pki.caCertPem },
    render: () => "up 1\n",
  });
  servers.push(s);
  const url = `https://localhost:${s.port}/metrics`;
  const ok = await get(url, { ca: pki.caCertPem, cert: pki.viewerCertPem, key: pki.viewerKeyPem });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "up 1\n");
  // Without a client certificate the TLS 1.3 server rejects the connection after the handshake.
  await assert.rejects(get(url, { ca: pki.caCertPem }));
  // A client certificate from another CA is refused too.
  const other = await generatePki({ address: "localhost" });
  await assert.rejects(get(url, { ca: pki.caCertPem, cert: other.adminCertPem, key: other.adminKeyPem }));
  // Plain HTTP to the TLS port gets no answer.
  await assert.rejects(get(`http://127.0.0.1:${s.port}/metrics`));
});

test("a taken port is a FAILED_PRECONDITION naming metrics.address", async () => {
  const s = await startMetricsServer({ host: "127.0.0.1", port: 0, logger, render: () => "" });
  servers.push(s);
  await assert.rejects(startMetricsServer({ host: "127.0.0.1", port: s.port, logger, render: () => "" }), (err: Error & { code?: string }) => {
    assert.equal(err.code, "FAILED_PRECONDITION");
    assert.match(err.message, /^metrics\.address: cannot listen on 127\.0\.0\.1:\d+/);
    return true;
  });
});
