// The metrics endpoint: `GET /metrics` over plain HTTP (the config only allows that on loopback) or over
// HTTPS with the daemon's server certificate, requiring a client certificate from the daemon's CA (any
// role: scraping reveals job IDs and usage, which viewers may see anyway). Nothing else is served.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Logger } from "pino";
import { JobletError } from "../../shared/errors.js";
import { EXPOSITION_CONTENT_TYPE } from "./exposition.js";

/** What the metrics server needs. */
export interface MetricsServerOptions {
  host: string;
  port: number;
  /** Serve HTTPS and require client certificates signed by `caPem`; absent = plain HTTP. */
  tls?: { certPem: string; keyPem: string; caPem: string };
  /** Produces the exposition text; called once per scrape. */
  render: () => string;
  logger: Logger;
}

/** A listening metrics server. */
export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Starts serving /metrics; resolves once bound. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const handler = (req: IncomingMessage, res: ServerResponse) => respond(req, res, opts);
  const server: Server = opts.tls
    ? createHttpsServer(
        { cert: opts.tls.certPem, key: opts.tls.keyPem, ca: opts.tls.caPem, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" },
        handler,
      )
    : createHttpServer(handler);
  // A scrape is one short request; idle keep-alive connections must not hold close() open.
  server.keepAliveTimeout = 5_000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new JobletError("FAILED_PRECONDITION", `metrics.address: cannot listen on ${opts.host}:${opts.port}: ${err.message}`, {
          hint: "choose a free port for metrics.address, or remove the metrics section to turn metrics off",
        }),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve((server.address() as { port: number }).port));
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function respond(req: IncomingMessage, res: ServerResponse, opts: MetricsServerOptions): void {
  const url = (req.url ?? "/").split("?")[0];
  if (url !== "/metrics") {
    res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("not found: metrics are served at /metrics\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return;
  }
  let body: string;
  try {
    body = opts.render();
  } catch (err) {
    opts.logger.error({ err }, "rendering metrics failed");
    res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" }).end("internal error rendering metrics\n");
    return;
  }
  res.writeHead(200, { "Content-Type": EXPOSITION_CONTENT_TYPE, "Content-Length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
}
