// Preloaded with `node --require` by startup.test.ts: at exit, prints on stderr which of the heavy CommonJS
// packages were loaded, so a test can assert that `rnx --version` and `rnx --help` never load them.
"use strict";
const HEAVY = ["@grpc/grpc-js", "commander", "yaml"];
process.on("exit", () => {
  const loaded = HEAVY.filter((pkg) => Object.keys(require.cache).some((file) => file.includes(`/node_modules/${pkg}/`)));
  process.stderr.write(`loaded-modules: ${loaded.join(",")}\n`);
});
