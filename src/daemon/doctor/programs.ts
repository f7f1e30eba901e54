// The programs jobs need: the OCI runtime (runc or crun) and the monitor (conmon), found as the daemon finds
// them (a name on PATH or an absolute path) and asked for their versions.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { fail, ok, type CheckResult } from "./check.js";

/** `name` resolved via PATH (or checked as given when it contains "/"); undefined when not executable. */
export function resolveExecutable(name: string, searchPath = process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"): string | undefined {
  const candidates = name.includes("/") ? [name] : searchPath.split(":").filter(Boolean).map((d) => path.join(d, name));
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** First line of `file --version` ("runc version 1.1.5"), or the reason it could not be read. */
export function programVersion(file: string): Promise<{ version?: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(file, ["--version"], { timeout: 5_000 }, (err, stdout, stderr) => {
      const first = `${stdout}`.split("\n")[0]?.trim();
      if (err || !first) resolve({ error: (`${stderr}`.trim() || err?.message) ?? "no output" });
      else resolve({ version: first });
    });
  });
}

/** What checkPrograms found; paths are set only for programs that exist and answer. */
export interface ProgramsFound {
  results: CheckResult[];
  runtimePath?: string;
  conmonPath?: string;
}

/** Checks runtime.path and runtime.conmonPath: present, executable, answering `--version`. */
export async function checkPrograms(config: DaemonConfig): Promise<ProgramsFound> {
  const found: ProgramsFound = { results: [] };
  const specs = [
    { id: "runtime", title: "OCI runtime", key: "runtime.path", name: config.runtimePath, pkg: "runc (Debian package `runc`)" },
    { id: "conmon", title: "monitor", key: "runtime.conmonPath", name: config.conmonPath, pkg: "conmon (Debian package `conmon`)" },
  ] as const;
  for (const s of specs) {
    const file = resolveExecutable(s.name);
    if (!file) {
      found.results.push(
        fail(s.id, s.title, `${s.key}: ${JSON.stringify(s.name)} is not an executable on this host`, `install ${s.pkg} or set ${s.key} to its absolute path`),
      );
      continue;
    }
    const v = await programVersion(file);
    if (!v.version) {
      found.results.push(fail(s.id, s.title, `${file} --version failed: ${v.error}`, `reinstall ${s.pkg}, or point ${s.key} at a working binary`));
      continue;
    }
    found.results.push(ok(s.id, s.title, `${v.version} (${file})`));
    if (s.id === "runtime") found.runtimePath = file;
    else found.conmonPath = file;
  }
  return found;
}
