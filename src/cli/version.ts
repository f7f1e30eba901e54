// rnx's version: the package's. Read from package.json next to the code (src/cli or dist/cli are both two
// levels below it); a bundle may define RNX_VERSION at build time instead (esbuild --define).
import { readFileSync } from "node:fs";

declare const RNX_VERSION: string | undefined;

/** The version string, e.g. "0.1.0"; "unknown" if package.json cannot be read. */
export function rnxVersion(): string {
  if (typeof RNX_VERSION === "string") return RNX_VERSION;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}
