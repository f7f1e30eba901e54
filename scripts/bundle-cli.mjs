#!/usr/bin/env node
// Bundles rnx into one ESM file, dist/rnx.mjs, that needs only Node.js 20+: no node_modules, no native
// modules, so the same file runs on Linux, macOS and Windows. `npm run build` runs this after tsc;
// `npm run build:cli` runs it alone. `--analyze` also prints the bundle's size by package; `--outfile PATH`
// writes the bundle elsewhere (the smoke test builds into a temporary directory).
//
// Choices, each measured (CPU time per run, interleaved, on the 2-core development VM):
// - One file, not a split entry plus lazily imported chunks: bin/rnx answers `--version` itself before
//   loading the bundle (node -e 0 + 25 ms, against + 60 ms for parsing the bundle), and for the other
//   commands the split build saved about 20 ms on `--help` and nothing on `list` (the chunks a command
//   needs are most of the bundle anyway).
// - Not minified: full or whitespace-only minification changed `list` by less than the noise (±10 ms), and
//   readable stack traces matter in "rnx: internal error" reports.
import { appendFileSync, chmodSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outfileArg = process.argv.indexOf("--outfile");
const outfile = outfileArg > 0 ? path.resolve(process.argv[outfileArg + 1]) : path.join(root, "dist", "rnx.mjs");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));

// grpc-js is CommonJS and calls require() for Node's built-ins; an ESM file has no `require`, so the banner
// makes one (esbuild's own shim would throw "Dynamic require of "node:http2" is not supported").
const banner = [
  "#!/usr/bin/env node",
  `// rnx ${pkg.version}, the Joblet CLI, bundled with its dependencies (their licences are at the end of this file).`,
  'import { createRequire as __rnxCreateRequire } from "node:module";',
  "const require = __rnxCreateRequire(import.meta.url);",
].join("\n");

// grpc-js require()s @grpc/proto-loader (and through it protobufjs) only inside its channelz and ORCA
// server features, which a client never calls; leaving it out saves a quarter of a megabyte. If a future
// grpc-js loaded it on the client path, the smoke test (src/cli/bundle.test.ts) would fail on "Cannot find
// module".
const NEVER_LOADED_BY_A_CLIENT = ["@grpc/proto-loader"];

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(root, "src", "cli", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  banner: { js: banner },
  define: { RNX_VERSION: JSON.stringify(pkg.version) },
  external: NEVER_LOADED_BY_A_CLIENT,
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
});

// Refuse a bundle that would need anything besides Node itself at run time.
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const output = Object.values(result.metafile.outputs)[0];
const foreign = output.imports.filter((i) => i.external && !builtins.has(i.path) && !NEVER_LOADED_BY_A_CLIENT.includes(i.path));
const native = Object.keys(result.metafile.inputs).filter((f) => f.endsWith(".node"));
if (foreign.length > 0 || native.length > 0) {
  console.error(`bundle-cli: ${outfile} would need ${[...foreign.map((i) => i.path), ...native].join(", ")} at run time`);
  process.exit(1);
}
appendFileSync(outfile, licenceNotice(Object.keys(output.inputs)));
chmodSync(outfile, 0o755);

if (process.argv.includes("--analyze")) {
  const byPackage = new Map();
  for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? file.split("/").slice(0, 2).join("/");
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  for (const [name, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`${String(bytes).padStart(9)}  ${name}`);
}
console.log(`bundle-cli: wrote ${path.relative(root, outfile)} (${(statSync(outfile).size / 1024).toFixed(0)} KiB, rnx ${pkg.version})`);

/**
 * A closing comment with each bundled package's name, version, licence and licence text, which the MIT,
 * ISC, BSD and Apache licences ask to ship with copies (esbuild keeps only /*! comments, and these packages
 * have none).
 */
function licenceNotice(inputs) {
  const dirs = new Set();
  for (const file of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (m) dirs.add(path.resolve(root, m[1]));
  }
  const sections = [...dirs].sort().map((dir) => {
    const meta = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file && existsSync(path.join(dir, file)) ? readFileSync(path.join(dir, file), "utf8").trim() : "(no licence file in the package)";
    return `${meta.name} ${meta.version}, licence: ${meta.license ?? "not stated"}\n\n${text}`;
  });
  const body = sections.join(`\n\n${"-".repeat(78)}\n\n`).replaceAll("*/", "* /");
  return `\n/*\nThird-party software bundled in this file:\n\n${body}\n*/\n`;
}
