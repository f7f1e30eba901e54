// The default seccomp profile of a job: everything is allowed except the system calls that container
// runtimes deny by default because they reach beyond a container — mounting, kernel modules and kexec,
// eBPF, the kernel keyring, tracing other processes, the clocks, swap, reboot, namespace creation and the
// like. A denied call fails with EPERM (clone3 with ENOSYS, so libc falls back to clone, whose namespace
// flags are filtered).

import { readFileSync } from "node:fs";
import { JobletError } from "../../shared/errors.js";

const EPERM = 1;
const ENOSYS = 38;

/** System calls a job may not make. */
export const DENIED_SYSCALLS = [
  // filesystems and mounts
  "mount", "umount", "umount2", "pivot_root",
  "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
  "open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd", "nfsservctl",
  // kernel modules, kexec, reboot, swap, accounting
  "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
  "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
  // eBPF, perf, keyring, kernel log, tracing and other processes' memory
  "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "syslog", "lookup_dcookie",
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "userfaultfd", "fanotify_init",
  // clocks and time
  "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "settimeofday", "stime", "adjtimex",
  // namespaces (clone with namespace flags is filtered below)
  "unshare", "setns",
  // hardware IO, obsolete or dangerous
  "iopl", "ioperm", "uselib", "vhangup", "_sysctl", "sysfs", "ustat", "vm86", "vm86old",
];

// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

/** seccomp architectures for the host's CPU (the native one plus its 32-bit compatibility modes). */
export function seccompArchitectures(arch: string = process.arch): string[] {
  switch (arch) {
    case "x64":
      return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    case "arm64":
      return ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];
    case "ia32":
      return ["SCMP_ARCH_X86"];
    case "arm":
      return ["SCMP_ARCH_ARM"];
    default:
      return [];
  }
}

/** The OCI `linux.seccomp` section of the default profile. */
export function defaultSeccompProfile(arch: string = process.arch): Record<string, unknown> {
  return {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: seccompArchitectures(arch),
    syscalls: [
      { names: DENIED_SYSCALLS, action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
      { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
      // clone(2)'s flags are its first argument on every architecture listed. libseccomp has no "masked not
      // equal", so one rule per flag: rules for the same call are OR-ed.
      ...CLONE_NAMESPACE_FLAGS.map((flag) => ({
        names: ["clone"],
        action: "SCMP_ACT_ERRNO",
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
      })),
    ],
  };
}

/**
 * The seccomp section for the `security.seccomp` setting: "default" (the profile above), "unconfined"
 * (none), or the path of an OCI seccomp profile in JSON. Throws INVALID_ARGUMENT naming the key.
 */
export function seccompForSetting(setting: string): Record<string, unknown> | undefined {
  if (setting === "unconfined") return undefined;
  if (setting === "default") return defaultSeccompProfile();
  let profile: unknown;
  try {
    profile = JSON.parse(readFileSync(setting, "utf8"));
  } catch (err) {
    throw new JobletError("INVALID_ARGUMENT", `security.seccomp: cannot read the profile ${setting}: ${(err as Error).message}`);
  }
  if (!profile || typeof profile !== "object" || typeof (profile as { defaultAction?: unknown }).defaultAction !== "string") {
    throw new JobletError("INVALID_ARGUMENT", `security.seccomp: expected an OCI seccomp profile with a defaultAction in ${setting}`);
  }
  return profile as Record<string, unknown>;
}
