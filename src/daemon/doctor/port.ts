// The API port (and the metrics port): free for the daemon to take, or already served by a daemon with this
// config's CA — told apart with a bind, then a TLS handshake that verifies the server's certificate.
import { request as httpRequest } from "node:http";
import { createServer, isIP } from "node:net";
import { connect } from "node:tls";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { fail, ok, type CheckResult } from "./check.js";

/** How long a connection attempt may take, ms. */
const CONNECT_TIMEOUT_MS = 3_000;

/** Checks the API port, and the metrics port when metrics are on. */
export async function checkPorts(config: DaemonConfig): Promise<CheckResult[]> {
  const out = [await checkApiPort(config)];
  if (config.metrics) out.push(await checkMetricsPort(config, config.metrics));
  return out;
}

async function checkApiPort(config: DaemonConfig): Promise<CheckResult> {
  const { address, port } = config.server;
  const where = `${display(address)}:${port}`;
  const bound = await tryBind(address, port);
  if (bound === true) return ok("port", "API port", `${where} is free`);
  if (bound !== "EADDRINUSE") return fail("port", "API port", `cannot listen on ${where}: ${bound}`, "set server.address to an address of this host (0.0.0.0 for all)");
  const answer = await tlsProbe(dialHost(address), port, config.tls.caPem);
  if (answer === true) return ok("port", "API port", `${where} is in use by a daemon presenting a certificate from this config's CA (a joblet already runs)`);
  return fail("port", "API port", `${where} is taken by another program (${answer})`, "stop that program or set server.port to a free port");
}

async function checkMetricsPort(config: DaemonConfig, m: NonNullable<DaemonConfig["metrics"]>): Promise<CheckResult> {
  const where = `${display(m.host)}:${m.port}`;
  const bound = await tryBind(m.host, m.port);
  if (bound === true) return ok("metrics.port", "metrics port", `${where} is free (${m.tls ? "HTTPS with client certificates" : "plain HTTP on loopback"})`);
  if (bound !== "EADDRINUSE") return fail("metrics.port", "metrics port", `cannot listen on ${where}: ${bound}`, "set metrics.address to an address of this host");
  const answer = m.tls ? await tlsProbe(dialHost(m.host), m.port, config.tls.caPem) : await httpProbe(dialHost(m.host), m.port);
  if (answer === true) return ok("metrics.port", "metrics port", `${where} is in use by a joblet metrics endpoint`);
  return fail("metrics.port", "metrics port", `${where} is taken by another program (${answer})`, "stop that program or change the port in metrics.address");
}

/** true when `host:port` could be bound (and was released), else the error code or message. */
function tryBind(host: string, port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** true when a TLS server on host:port presents a certificate issued by `caPem`, else why not. */
function tlsProbe(host: string, port: number, caPem: string): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca: caPem, ALPNProtocols: ["h2"], servername: isIP(host) ? undefined : host, timeout: CONNECT_TIMEOUT_MS, checkServerIdentity: () => undefined });
    const done = (r: true | string) => {
      socket.destroy();
      resolve(r);
    };
    socket.once("secureConnect", () => done(socket.authorized ? true : `TLS peer not verified: ${String(socket.authorizationError)}`));
    socket.once("timeout", () => done("no TLS handshake within 3 s"));
    socket.once("error", (err) => done(`TLS handshake failed: ${err.message}`));
  });
}

/** true when GET /metrics on host:port answers 200 with Prometheus text mentioning joblet, else why not. */
function httpProbe(host: string, port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host, port, path: "/metrics", timeout: CONNECT_TIMEOUT_MS, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d.slice(0, 4096)));
      res.on("end", () => resolve(res.statusCode === 200 && body.includes("joblet_") ? true : `GET /metrics answered ${res.statusCode}`));
    });
    req.once("timeout", () => req.destroy(new Error("no answer within 3 s")));
    req.once("error", (err) => resolve(err.message));
    req.end();
  });
}

/** Where to connect to reach a server bound to `address` (the wildcard addresses mean this host). */
function dialHost(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::" || address === "[::]") return "::1";
  return address;
}

function display(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}
