import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import tls from "node:tls";
import { parse as parseYaml } from "yaml";
import { loadDaemonConfig, parseDaemonConfig } from "../../shared/config/daemon.js";
import { loadRnxConfig, selectNode } from "../../shared/config/rnx.js";
import { isJobletError } from "../../shared/errors.js";
import { describeCertificate } from "../../shared/tls/certs.js";
import { type InitOptions, runInit } from "./init.js";

const root = mkdtempSync(path.join(os.tmpdir(), "joblet-init-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A directory path under the test root that does not exist yet. */
function freshDir(): string {
  return path.join(root, `case-${++counter}`, "config");
}

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

describe("runInit", () => {
  test("writes both configs 0600 into a new 0711 directory, loadable by the real loaders", async () => {
    const dir = freshDir();
    const started = performance.now();
    const res = await runInit({ dir, address: "joblet.example.com", port: 6000, names: ["10.9.8.7", "alt.example.com"] });
    console.log(`runInit: ${(performance.now() - started).toFixed(1)} ms (PKI generation and both files)`);

    assert.equal(res.daemonConfigFile, path.join(dir, "joblet-config.yml"));
    assert.equal(res.rnxConfigFile, path.join(dir, "rnx-config.yml"));
    assert.equal(mode(dir), 0o711);
    assert.equal(mode(res.daemonConfigFile), 0o600);
    assert.equal(mode(res.rnxConfigFile), 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ["joblet-config.yml", "rnx-config.yml"], "no temp files, no CA key");

    const daemon = loadDaemonConfig(res.daemonConfigFile);
    assert.deepEqual(daemon.server, { address: "0.0.0.0", port: 6000 });
    assert.equal(daemon.stateDir, path.join(dir, "state"));
    assert.equal(daemon.runDir, daemon.stateDir, "no --run-dir: runtime state inside the state dir");

    const server = new X509Certificate(daemon.tls.certPem);
    const ca = new X509Certificate(daemon.tls.caPem);
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
    assert.equal(server.checkHost("joblet"), "joblet");
    assert.equal(server.checkHost("joblet.example.com"), "joblet.example.com");
    assert.equal(server.checkHost("alt.example.com"), "alt.example.com");
    assert.equal(server.checkIP("10.9.8.7"), "10.9.8.7");
    assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
    assert.deepEqual(describeCertificate(daemon.tls.certPem).sans, res.serverCert.sans);
    assert.ok(res.serverCert.sans.includes("DNS:joblet"));

    const rnx = loadRnxConfig(res.rnxConfigFile);
    assert.deepEqual(
      rnx.nodes.map((n) => n.name),
      ["default", "viewer"],
    );
    for (const [name, role] of [
      ["default", "admin"],
      ["viewer", "viewer"],
    ] as const) {
      const node = selectNode(rnx, name);
      assert.equal(node.address, "joblet.example.com:6000");
      assert.equal(node.caPem, daemon.tls.caPem);
      assert.equal(describeCertificate(node.certPem).role, role);
      assert.ok(new X509Certificate(node.certPem).verify(ca.publicKey));
    }
  });

  test("writes every default section out exactly as the schema's defaults", async () => {
    const res = await runInit({ dir: freshDir() });
    const raw = parseYaml(readFileSync(res.daemonConfigFile, "utf8")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw).sort(), [
      "cgroup",
      "filesystem",
      "grpc",
      "joblet",
      "logging",
      "runtime",
      "security",
      "server",
      "state",
      "uploads",
      "version",
    ]);
    // The same file reduced to what init must decide; the schema fills in the rest. Equal results mean the
    // written-out values are the defaults, so this fails if the schema's defaults change without init.
    const minimal = { version: "3.0", server: raw.server, security: raw.security, state: raw.state };
    assert.deepEqual(parseDaemonConfig(raw, "x"), parseDaemonConfig(minimal, "x"));
  });

  test("--run-dir is written as state.runDir; a relative one is refused naming the flag", async () => {
    const res = await runInit({ dir: freshDir(), stateDir: "/var/lib/joblet", runDir: "/run/joblet" });
    const daemon = loadDaemonConfig(res.daemonConfigFile);
    assert.equal(daemon.stateDir, "/var/lib/joblet");
    assert.equal(daemon.runDir, "/run/joblet");
    await assert.rejects(runInit({ dir: freshDir(), runDir: "run/joblet" }), /--run-dir: .*absolute directory path.*"run\/joblet"/);
  });

  test("defaults: address localhost, port 50051", async () => {
    const res = await runInit({ dir: freshDir() });
    assert.equal(loadDaemonConfig(res.daemonConfigFile).server.port, 50051);
    assert.equal(selectNode(loadRnxConfig(res.rnxConfigFile), "default").address, "localhost:50051");
  });

  test("an IPv6 address is bracketed in rnx-config.yml and an IP SAN in the certificate", async () => {
    const res = await runInit({ dir: freshDir(), address: "fd00::42", port: 7000 });
    assert.equal(selectNode(loadRnxConfig(res.rnxConfigFile), "viewer").address, "[fd00::42]:7000");
    assert.equal(new X509Certificate(loadDaemonConfig(res.daemonConfigFile).tls.certPem).checkIP("fd00::42"), "fd00::42");
  });

  test("refuses to overwrite either file without force, and writes nothing", async () => {
    const dir = freshDir();
    const first = await runInit({ dir });
    const before = readFileSync(first.daemonConfigFile, "utf8");
    await assert.rejects(runInit({ dir }), (err) => {
      assert.ok(isJobletError(err, "ALREADY_EXISTS"), String(err));
      assert.ok(err.message.includes(first.daemonConfigFile), err.message);
      assert.ok(err.message.includes("--force"), err.message);
      return true;
    });
    assert.equal(readFileSync(first.daemonConfigFile, "utf8"), before);

    // Only the CLI config present: still refused, and the daemon config is not written.
    rmSync(first.daemonConfigFile);
    await assert.rejects(runInit({ dir }), (err) => {
      assert.ok(isJobletError(err, "ALREADY_EXISTS"));
      assert.ok(err.message.includes(first.rnxConfigFile), err.message);
      return true;
    });
    assert.deepEqual(readdirSync(dir), ["rnx-config.yml"]);
  });

  test("overwrites with force: a new CA, still 0600", async () => {
    const dir = freshDir();
    const first = await runInit({ dir });
    const oldCa = loadDaemonConfig(first.daemonConfigFile).tls.caPem;
    writeFileSync(first.rnxConfigFile, "stale", { mode: 0o644 });
    const second = await runInit({ dir, force: true, port: 50052 });
    const daemon = loadDaemonConfig(second.daemonConfigFile);
    assert.notEqual(daemon.tls.caPem, oldCa);
    assert.equal(daemon.server.port, 50052);
    assert.equal(selectNode(loadRnxConfig(second.rnxConfigFile), "default").caPem, daemon.tls.caPem);
    assert.equal(mode(second.daemonConfigFile), 0o600);
    assert.equal(mode(second.rnxConfigFile), 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ["joblet-config.yml", "rnx-config.yml"]);
  });

  test("files are 0600 whatever the umask", async () => {
    const old = process.umask(0o277);
    try {
      const res = await runInit({ dir: freshDir() });
      assert.equal(mode(res.daemonConfigFile), 0o600);
      assert.equal(mode(res.rnxConfigFile), 0o600);
    } finally {
      process.umask(old);
    }
  });

  test("refuses bad flags before touching the disk, naming the flag", async () => {
    const cases: [Partial<InitOptions>, string][] = [
      [{ port: 0 }, "--port"],
      [{ port: 65536 }, "--port"],
      [{ port: 50051.5 }, "--port"],
      [{ port: Number.NaN }, "--port"],
      [{ address: "" }, "--address"],
      [{ address: "two words" }, "--address"],
      [{ address: "a,b" }, "--address"],
      [{ address: "host:1234" }, "--address"],
      [{ names: ["ok.example", ""] }, "--names"],
      [{ names: ["x\ty"] }, "--names"],
      [{ names: ["a,b"] }, "--names"],
      [{ dir: "" }, "--dir"],
    ];
    for (const [bad, field] of cases) {
      const dir = freshDir();
      await assert.rejects(runInit({ dir, ...bad }), (err) => {
        assert.ok(isJobletError(err, "INVALID_ARGUMENT"), String(err));
        assert.ok(err.message.startsWith(`${field}: expected`), err.message);
        return true;
      });
      assert.throws(() => statSync(path.dirname(dir)), { code: "ENOENT" });
    }
  });

  test("the written configs make a working mutual-TLS pair", async () => {
    const res = await runInit({ dir: freshDir(), address: "localhost" });
    const daemon = loadDaemonConfig(res.daemonConfigFile);
    const node = selectNode(loadRnxConfig(res.rnxConfigFile), "default");
    const server = tls.createServer(
      {
        key: daemon.tls.keyPem,
        cert: daemon.tls.certPem,
        ca: daemon.tls.caPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (socket) => socket.end(String(socket.getPeerCertificate().subject.OU)),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const reply = await new Promise<string>((resolve, reject) => {
        let data = "";
        const socket = tls.connect({
          host: "127.0.0.1",
          port,
          servername: node.address.split(":")[0],
          key: node.keyPem,
          cert: node.certPem,
          ca: node.caPem,
        });
        socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
        socket.on("data", (chunk) => (data += chunk));
        socket.on("error", reject);
        socket.on("close", () => resolve(data));
      });
      assert.equal(reply, "admin");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
