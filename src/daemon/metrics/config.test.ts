// The `metrics` section of joblet-config.yml (schema in src/shared/config/daemon.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDaemonConfig } from "../../shared/config/daemon.js";

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n";

function parse(metrics?: unknown) {
  return parseDaemonConfig(
    { version: "3.0", security: { serverCert: PEM_CERT, serverKey: PEM_KEY, caCert: PEM_CERT }, ...(metrics === undefined ? {} : { metrics }) },
    "joblet-config.yml",
  );
}

test("metrics are off when the section is absent", () => {
  assert.equal(parse().metrics, undefined);
});

test("a loopback address serves plain HTTP", () => {
  assert.deepEqual(parse({ address: "127.0.0.1:9464" }).metrics, { host: "127.0.0.1", port: 9464, tls: false });
  assert.deepEqual(parse({ address: "[::1]:9464" }).metrics, { host: "::1", port: 9464, tls: false });
  assert.deepEqual(parse({ address: "localhost:9100" }).metrics, { host: "localhost", port: 9100, tls: false });
});

test("a non-loopback address needs tls: true", () => {
  assert.throws(() => parse({ address: "0.0.0.0:9464" }), (err: Error) => {
    assert.match(err.message, /metrics\.address: expected a loopback address .* set metrics\.tls: true .*, got "0\.0\.0\.0:9464"/);
    return true;
  });
  assert.deepEqual(parse({ address: "0.0.0.0:9464", tls: true }).metrics, { host: "0.0.0.0", port: 9464, tls: true });
});

test("malformed addresses and unknown keys are refused, naming the key", () => {
  for (const address of ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9464", "[nothost]:1"]) {
    assert.throws(() => parse({ address }), (err: Error) => {
      assert.ok(err.message.includes(`metrics.address: expected "host:port"`), err.message);
      assert.ok(err.message.includes(`got ${JSON.stringify(address)}`), err.message);
      return true;
    });
  }
  assert.throws(() => parse({ address: "127.0.0.1:9464", path: "/x" }), /metrics\.path: unknown key/);
  assert.throws(() => parse({ address: "127.0.0.1:9464", tls: "yes" }), /metrics\.tls: .*, got "yes"/);
  assert.throws(() => parse({}), /metrics\.address: /);
});
