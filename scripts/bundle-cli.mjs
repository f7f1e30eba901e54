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
// - The program is one CommonJS-style function between two marker comments, called by a few lines of ESM
//   around it, plus a V8 code cache, <outfile>.cache, written after a training run (--no-cache skips it).
//   bin/rnx compiles that function with the cache (see there): rnx list spent about a third of its CPU time
//   parsing and compiling the bundle, and the cache removes most of it. `node rnx.mjs` runs the same function
//   without the cache.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outfileArg = process.argv.indexOf("--outfile");
const outfile = outfileArg > 0 ? path.resolve(process.argv[outfileArg + 1]) : path.join(root, "dist", "rnx.mjs");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));

// The ESM shell around the program function; the bundled CommonJS packages call require() for Node's
// built-ins, so the function gets a real `require` made for this file. The markers must match bin/rnx's.
const PROGRAM_START = "/*rnx-program sha256=";
const PROGRAM_END = "\n/*rnx-program-end*/";
const head = [
  "#!/usr/bin/env node",
  `// rnx ${pkg.version}, the Joblet CLI, bundled with its dependencies (their licences are at the end of this file).`,
  "// The program is the function between the rnx-program markers; bin/rnx compiles it with V8's code cache.",
  'import { createRequire as __rnxCreateRequire } from "node:module";',
  "const __rnxModule = { exports: {} };",
  "const __rnxProgram =",
].join("\n");
const tail = [
  ";",
  "__rnxProgram(__rnxCreateRequire(import.meta.url), __rnxModule, __rnxModule.exports);",
  "process.exitCode = await __rnxModule.exports.main(process.argv.slice(2));",
  "",
].join("\n");

// rnx speaks gRPC with its own small client (src/cli/grpc/) and no longer uses grpc-js. The generated
// src/shared/proto/joblet.ts still imports it for the service's client class, which it builds with a
// top-level makeGenericClientConstructor call that esbuild cannot drop; this stub answers that one import, so
// the bundle holds no grpc-js (~0.5 MB less to load and compile). Any other use of grpc-js from the CLI fails
// the build.
const GENERATED_PROTO = path.join(root, "src", "shared", "proto", "joblet.ts");
const grpcJsStub = {
  name: "grpc-js-stub",
  setup(build) {
    build.onResolve({ filter: /^@grpc\/grpc-js$/ }, (args) => {
      if (args.importer !== GENERATED_PROTO) {
        return { errors: [{ text: `${path.relative(root, args.importer)} imports @grpc/grpc-js: rnx must not (it has its own client, src/cli/grpc/)` }] };
      }
      return { path: "grpc-js-stub", namespace: "grpc-js-stub" };
    });
    build.onLoad({ filter: /.*/, namespace: "grpc-js-stub" }, () => ({
      loader: "js",
      contents: [
        "// The generated code's client class, never instantiated by rnx.",
        "export class Client { constructor() { throw new Error('grpc-js is not bundled in rnx'); } }",
        "export function makeGenericClientConstructor() { return Client; }",
      ].join("\n"),
    }));
  },
};

// Modules that rnx's commands rarely need, loaded on their first use instead of when the bundle starts: the
// importer gets a stand-in whose functions require the real module when called (esbuild bundles such a
// require and runs the module's code only then). Each was measured in a CPU profile of `rnx list`, 2-core VM:
// - node:child_process, which commander requires when it loads, for executable subcommands (rnx has none):
//   ~5 ms of every command; commander calls only its spawn.
// - yaml, for the config files the fast path (src/shared/config/rnx-yaml.ts) leaves to it: ~2 ms to load.
const LAZY_MODULES = [
  { module: "node:child_process", importer: /[\\/]node_modules[\\/]commander[\\/]/, functions: ["spawn"] },
  { module: "yaml", importer: /[\\/]src[\\/]shared[\\/]config[\\/]rnx\.ts$/, functions: ["parse"] },
];
const lazyModules = {
  name: "lazy-modules",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const lazy = LAZY_MODULES.find((l) => l.module === args.path && l.importer.test(args.importer));
      return lazy && args.namespace === "file" ? { path: lazy.module, namespace: "lazy-module" } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: "lazy-module" }, (args) => {
      const { module, functions } = LAZY_MODULES.find((l) => l.module === args.path);
      const body = functions.map((f) => `  ${f}: (...args) => require(${JSON.stringify(module)}).${f}(...args),`);
      return { loader: "js", resolveDir: root, contents: `module.exports = {\n${body.join("\n")}\n};\n` };
    });
  },
};

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(root, "src", "cli", "bundle-entry.ts")],
  outfile,
  write: false,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  define: { RNX_VERSION: JSON.stringify(pkg.version) },
  // version.ts reads package.json through import.meta.url only when RNX_VERSION is not defined.
  logOverride: { "empty-import-meta": "silent" },
  plugins: [grpcJsStub, lazyModules],
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
});

// Refuse a bundle that would need anything besides Node itself at run time.
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const output = Object.values(result.metafile.outputs)[0];
const foreign = output.imports.filter((i) => i.external && !builtins.has(i.path));
const native = Object.keys(result.metafile.inputs).filter((f) => f.endsWith(".node"));
if (foreign.length > 0 || native.length > 0) {
  console.error(`bundle-cli: ${outfile} would need ${[...foreign.map((i) => i.path), ...native].join(", ")} at run time`);
  process.exit(1);
}
const program = `(function (require, module, exports) {\n${result.outputFiles[0].text}})`;
const hash = createHash("sha256").update(program).digest("hex");
mkdirSync(path.dirname(outfile), { recursive: true });
writeFileSync(outfile, `${head}\n${PROGRAM_START}${hash}*/\n${program}${PROGRAM_END}\n${tail}`);
appendFileSync(outfile, licenceNotice(Object.keys(output.inputs)));
chmodSync(outfile, 0o755);
rmSync(`${outfile}.cache`, { force: true });

if (process.argv.includes("--analyze")) {
  const byPackage = new Map();
  for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? file.split("/").slice(0, 2).join("/");
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  for (const [name, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`${String(bytes).padStart(9)}  ${name}`);
}
console.log(`bundle-cli: wrote ${path.relative(root, outfile)} (${(statSync(outfile).size / 1024).toFixed(0)} KiB, rnx ${pkg.version})`);
if (!process.argv.includes("--no-cache")) trainCodeCache();

/**
 * Writes <outfile>.cache: bin/rnx runs rnx's common commands against a fake daemon (src/cli/code-cache-train.ts)
 * and saves V8's code cache of everything they compiled. A failure only costs the speed-up: rnx works
 * without the cache.
 */
function trainCodeCache() {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(root, "src", "cli", "code-cache-train.ts"), outfile], { cwd: root, encoding: "utf8" });
  if (r.status === 0 && existsSync(`${outfile}.cache`)) {
    console.log(`bundle-cli: wrote ${path.relative(root, outfile)}.cache (${(statSync(`${outfile}.cache`).size / 1024).toFixed(0)} KiB, V8 code cache for Node ${process.version})`);
  } else {
    console.warn(`bundle-cli: no code cache written (rnx works without it, only starts slower): ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  }
}

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
