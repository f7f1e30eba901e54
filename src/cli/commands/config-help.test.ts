import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import { parseRnxConfig } from "../../shared/config/rnx.js";
import { generatePki } from "../../shared/tls/certs.js";
import { CONFIG_HELP } from "./config-help.js";

test("the example is a valid rnx config once real PEMs replace the placeholders", async () => {
  const pki = await generatePki({ address: "localhost" });
  const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
  let n = 0;
  const filled = CONFIG_HELP.replace(/-----BEGIN (CERTIFICATE|PRIVATE KEY)-----\n\s*\.\.\.\n\s*-----END \1-----/g, (_m, kind: string) => {
    n++;
    return indent(kind === "CERTIFICATE" ? (n % 3 === 0 ? pki.caCertPem : pki.adminCertPem) : pki.adminKeyPem);
  });
  assert.equal(n, 6, "three PEMs per node, two nodes");
  const config = parseRnxConfig(parse(filled), "example");
  assert.deepEqual(config.nodes.map((x) => [x.name, x.address]), [
    ["default", "joblet.example.com:50051"],
    ["viewer", "joblet.example.com:50051"],
  ]);
});

test("it says how to get a real config and where rnx looks", () => {
  assert.match(CONFIG_HELP, /joblet init --dir DIR/);
  assert.match(CONFIG_HELP, /\$RNX_CONFIG/);
  assert.match(CONFIG_HELP, /~\/\.rnx\/rnx-config\.yml/);
  assert.match(CONFIG_HELP, /JOBLET_SERVER/);
});
