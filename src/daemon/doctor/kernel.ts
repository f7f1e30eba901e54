// Kernel features jobs use beyond cgroups: user namespaces (jobs' root is an unprivileged host uid) and
// seccomp filters (the syscall deny list).
import { readFileSync } from "node:fs";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { fail, ok, warn, type CheckResult } from "./check.js";

/** The files read; tests point these elsewhere. */
export interface KernelFiles {
  maxUserNamespaces: string;
  procStatus: string;
}

const HOST: KernelFiles = { maxUserNamespaces: "/proc/sys/user/max_user_namespaces", procStatus: "/proc/self/status" };

/** Checks user namespaces and seccomp; each is a failure only when the config uses it. */
export function checkKernel(config: DaemonConfig, files: KernelFiles = HOST): CheckResult[] {
  return [checkUserNamespaces(config, files), checkSeccomp(config, files)];
}

function checkUserNamespaces(config: DaemonConfig, files: KernelFiles): CheckResult {
  const used = config.idMapBase !== undefined;
  const text = read(files.maxUserNamespaces);
  const max = Number(text?.trim());
  if (text !== undefined && Number.isInteger(max) && max > 0) {
    return ok("userns", "user namespaces", `available (max_user_namespaces = ${max})${used ? `; jobs' root maps to host uid ${config.idMapBase}` : "; not used (security.userNamespace: false)"}`);
  }
  const found = text === undefined ? `${files.maxUserNamespaces} is missing: the kernel has no user namespaces` : `${files.maxUserNamespaces} is ${text.trim()}`;
  const hint = `sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d/)${used ? ", or set security.userNamespace: false" : ""}`;
  return used ? fail("userns", "user namespaces", `${found}; jobs run in user namespaces`, hint) : warn("userns", "user namespaces", found, hint);
}

function checkSeccomp(config: DaemonConfig, files: KernelFiles): CheckResult {
  const used = config.seccomp !== "unconfined";
  const status = read(files.procStatus) ?? "";
  // "Seccomp:" appears with CONFIG_SECCOMP, "Seccomp_filters:" (Linux 5.9+) with filter support.
  const mode = /^Seccomp:\s*(\d+)$/m.exec(status)?.[1];
  if (mode !== undefined) {
    return ok("seccomp", "seccomp", `available (Seccomp: ${mode} in ${files.procStatus}); jobs get ${config.seccomp === "default" ? "the default profile" : config.seccomp === "unconfined" ? "no filter (security.seccomp: unconfined)" : `the profile ${config.seccomp}`}`);
  }
  const found = `no Seccomp field in ${files.procStatus}: the kernel was built without seccomp`;
  const hint = `use a kernel with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER${used ? ", or set security.seccomp: unconfined" : ""}`;
  return used ? fail("seccomp", "seccomp", found, hint) : warn("seccomp", "seccomp", found, hint);
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
