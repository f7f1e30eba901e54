import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { isJobletError } from "../errors.js";
import { loadRnxConfig, parseRnxConfig, rnxConfigSearchPath, selectNode } from "./rnx.js";

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
const NODE = { address: "joblet.example.com:50051", cert: CERT, key: KEY, ca: CERT };

/** The message of the INVALID_ARGUMENT that parsing `raw` throws. */
function refusal(raw: unknown): string {
  try {
    parseRnxConfig(raw, "/etc/rnx.yml");
  } catch (err) {
    assert.ok(isJobletError(err, "INVALID_ARGUMENT"), String(err));
    return err.message;
  }
  assert.fail("expected INVALID_ARGUMENT");
}

describe("parseRnxConfig", () => {
  test("a valid config becomes frozen nodes in file order", () => {
    const config = parseRnxConfig({ version: "3.0", nodes: { default: NODE, lab: { ...NODE, address: "[::1]:9" }, ip: { ...NODE, address: "10.0.0.1:1" } } }, "/f.yml");
    assert.equal(config.file, "/f.yml");
    assert.deepEqual(
      config.nodes.map((n) => [n.name, n.address]),
      [["default", "joblet.example.com:50051"], ["lab", "[::1]:9"], ["ip", "10.0.0.1:1"]],
    );
    assert.deepEqual(config.nodes[0], { name: "default", address: NODE.address, certPem: CERT, keyPem: KEY, caPem: CERT });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.nodes) && Object.isFrozen(config.nodes[0]));
  });

  test("each problem names the key, what was expected and what was given", () => {
    const cases: Array<[unknown, string]> = [
      [{ nodes: { a: NODE } }, 'version: expected "3.0", got nothing'],
      [{ version: "2.0", nodes: { a: NODE } }, 'version: expected "3.0", got "2.0"'],
      [{ version: 3, nodes: { a: NODE } }, 'version: expected "3.0", got 3'],
      [{ version: "3.0" }, "nodes: expected a mapping of node names to nodes (address, cert, key, ca), got nothing"],
      [{ version: "3.0", nodes: "x" }, 'nodes: expected a mapping of node names to nodes (address, cert, key, ca), got "x"'],
      [{ version: "3.0", nodes: {} }, "nodes: expected at least one node, got {}"],
      [{ version: "3.0", nodes: { a: null } }, "nodes.a: expected a mapping with the keys address, cert, key and ca, got null"],
      [{ version: "3.0", nodes: { "": NODE } }, 'nodes.: expected a node name that is not empty, got ""'],
      [{ version: "3.0", nodes: { a: { ...NODE, address: "nohost" } } }, 'nodes.a.address: expected "host:port", got "nohost"'],
      [{ version: "3.0", nodes: { a: { ...NODE, address: "::1:50051" } } }, 'nodes.a.address: expected "host:port", got "::1:50051"'],
      [{ version: "3.0", nodes: { a: { ...NODE, address: "h:123456" } } }, 'nodes.a.address: expected "host:port", got "h:123456"'],
      [{ version: "3.0", nodes: { a: { ...NODE, address: 5 } } }, 'nodes.a.address: expected "host:port", got 5'],
      [{ version: "3.0", nodes: { a: { ...NODE, cert: undefined } } }, "nodes.a.cert: expected a PEM-encoded CERTIFICATE, got nothing"],
      [{ version: "3.0", nodes: { a: { ...NODE, key: CERT } } }, `nodes.a.key: expected a PEM-encoded PRIVATE KEY, got ${JSON.stringify(CERT)}`],
      [{ version: "3.0", nodes: { a: { ...NODE, ca: "nope" } } }, 'nodes.a.ca: expected a PEM-encoded CERTIFICATE, got "nope"'],
      [{ version: "3.0", nodes: { a: { ...NODE, port: 5 } } }, "nodes.a.port: unknown key (not a Joblet setting; remove it or check its spelling)"],
      [{ version: "3.0", nodes: { a: NODE }, foo: 1, bar: 2 }, "foo, bar: unknown key (not a Joblet setting; remove it or check its spelling)"],
    ];
    for (const [raw, line] of cases) assert.equal(refusal(raw), `invalid config /etc/rnx.yml:\n  ${line}`, line);
  });

  test("anything but a mapping at the top is refused; an empty file reads as missing keys", () => {
    assert.equal(refusal("hello"), 'invalid config /etc/rnx.yml:\n  (top level): expected a mapping with the keys "version" and "nodes", got "hello"');
    assert.match(refusal([1]), /\(top level\): expected a mapping .*, got \[1\]$/);
    for (const empty of [null, undefined, {}]) {
      assert.equal(
        refusal(empty),
        'invalid config /etc/rnx.yml:\n  version: expected "3.0", got nothing\n  nodes: expected a mapping of node names to nodes (address, cert, key, ca), got nothing',
      );
    }
  });

  test("every problem is reported at once, in file order, unknown keys after each mapping's own", () => {
    const msg = refusal({ version: "2", nodes: { a: { ...NODE, address: "x", key: "k", extra: 1 }, b: { cert: CERT } }, z: 1 });
    assert.deepEqual(msg.split("\n  ").slice(1), [
      'version: expected "3.0", got "2"',
      'nodes.a.address: expected "host:port", got "x"',
      'nodes.a.key: expected a PEM-encoded PRIVATE KEY, got "k"',
      "nodes.a.extra: unknown key (not a Joblet setting; remove it or check its spelling)",
      'nodes.b.address: expected "host:port", got nothing',
      "nodes.b.key: expected a PEM-encoded PRIVATE KEY, got nothing",
      "nodes.b.ca: expected a PEM-encoded CERTIFICATE, got nothing",
      "z: unknown key (not a Joblet setting; remove it or check its spelling)",
    ]);
  });

  test("a long value is cut in the message (a key's PEM never floods the terminal)", () => {
    const msg = refusal({ version: "3.0", nodes: { a: { ...NODE, ca: "x".repeat(300) } } });
    assert.ok(msg.length < 220, msg);
    assert.match(msg, /x\.\.\."?$/);
  });
});

describe("selectNode", () => {
  const config = parseRnxConfig({ version: "3.0", nodes: { default: NODE, viewer: NODE } }, "/f.yml");
  test("finds the node by name", () => {
    assert.equal(selectNode(config, "viewer").name, "viewer");
  });
  test("an unknown name is NOT_FOUND listing the names that exist", () => {
    assert.throws(
      () => selectNode(config, "prod"),
      (err: unknown) => isJobletError(err, "NOT_FOUND") && err.message === 'node "prod" is not in /f.yml (nodes: default, viewer)' && err.hint === "pick one with --node NAME",
    );
  });
});

describe("loadRnxConfig and the search path", () => {
  let dir: string;
  const cwd = process.cwd();
  const saved = process.env.RNX_CONFIG;
  const yaml = (address: string) => stringify({ version: "3.0", nodes: { default: { ...NODE, address } } });
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-config-test-"));
  });
  after(() => {
    process.chdir(cwd);
    if (saved === undefined) delete process.env.RNX_CONFIG;
    else process.env.RNX_CONFIG = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  test("the search order: $RNX_CONFIG, ./, ./config/, ~/.rnx/, /etc/joblet/, /opt/joblet/config/", () => {
    assert.deepEqual(rnxConfigSearchPath({ RNX_CONFIG: "/x.yml" }), [
      "/x.yml",
      "./rnx-config.yml",
      "./config/rnx-config.yml",
      path.join(os.homedir(), ".rnx", "rnx-config.yml"),
      "/etc/joblet/rnx-config.yml",
      "/opt/joblet/config/rnx-config.yml",
    ]);
    assert.equal(rnxConfigSearchPath({})[0], "./rnx-config.yml");
  });

  test("an explicit file is read and parsed", () => {
    const file = path.join(dir, "explicit.yml");
    writeFileSync(file, yaml("a:1"));
    const config = loadRnxConfig(file);
    assert.equal(config.file, file);
    assert.equal(config.nodes[0]!.address, "a:1");
    assert.equal(config.nodes[0]!.certPem, CERT);
  });

  test("$RNX_CONFIG comes before ./config/rnx-config.yml", () => {
    mkdirSync(path.join(dir, "config"), { recursive: true });
    writeFileSync(path.join(dir, "config", "rnx-config.yml"), yaml("local:2"));
    const env = path.join(dir, "env.yml");
    writeFileSync(env, yaml("env:3"));
    process.chdir(dir);
    process.env.RNX_CONFIG = env;
    assert.equal(loadRnxConfig().nodes[0]!.address, "env:3");
    delete process.env.RNX_CONFIG;
    const found = loadRnxConfig();
    assert.equal(found.file, "./config/rnx-config.yml");
    assert.equal(found.nodes[0]!.address, "local:2");
    process.chdir(cwd);
  });

  test("a missing explicit file is NOT_FOUND with a hint", () => {
    const file = path.join(dir, "nope.yml");
    assert.throws(
      () => loadRnxConfig(file),
      (err: unknown) => isJobletError(err, "NOT_FOUND") && err.message === `config file ${file} does not exist` && /config-help/.test(err.hint ?? ""),
    );
  });

  test("invalid YAML and invalid content are INVALID_ARGUMENT naming the file", () => {
    const bad = path.join(dir, "bad.yml");
    writeFileSync(bad, "version: [unclosed\n");
    assert.throws(() => loadRnxConfig(bad), (err: unknown) => isJobletError(err, "INVALID_ARGUMENT") && err.message.startsWith(`config ${bad} is not valid YAML: `));
    const wrong = path.join(dir, "wrong.yml");
    writeFileSync(wrong, 'version: "3.0"\nnodes:\n  default:\n    address: nohostport\n');
    assert.throws(
      () => loadRnxConfig(wrong),
      (err: unknown) => isJobletError(err, "INVALID_ARGUMENT") && err.message.startsWith(`invalid config ${wrong}:\n  nodes.default.address: expected "host:port", got "nohostport"`),
    );
  });
});
