import assert from "node:assert/strict";
import { test } from "node:test";
import { DENIED_SYSCALLS, defaultSeccompProfile, seccompArchitectures } from "./seccomp.js";

test("the default profile allows by default and denies the calls that reach beyond a container", () => {
  const p = defaultSeccompProfile("x64") as { defaultAction: string; architectures: string[]; syscalls: { names: string[]; action: string; errnoRet: number; args?: { value: number; valueTwo: number; op: string }[] }[] };
  assert.equal(p.defaultAction, "SCMP_ACT_ALLOW");
  assert.deepEqual(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const denied = new Set(p.syscalls.filter((s) => !s.args).flatMap((s) => s.names));
  for (const name of ["mount", "umount2", "pivot_root", "init_module", "finit_module", "kexec_load", "bpf", "keyctl", "ptrace", "clock_settime", "settimeofday", "swapon", "reboot", "unshare", "setns", "perf_event_open"]) {
    assert.ok(denied.has(name), `${name} is denied`);
  }
  assert.equal(new Set(DENIED_SYSCALLS).size, DENIED_SYSCALLS.length, "no duplicates");
  // clone with any namespace flag: one rule per flag, each matching (flags & f) == f.
  const cloneRules = p.syscalls.filter((s) => s.names.includes("clone"));
  assert.equal(cloneRules.length, 7);
  for (const r of cloneRules) {
    assert.equal(r.args![0]!.op, "SCMP_CMP_MASKED_EQ");
    assert.equal(r.args![0]!.value, r.args![0]!.valueTwo);
  }
  const newUser = 0x10000000;
  assert.ok(cloneRules.some((r) => r.args![0]!.value === newUser));
  assert.equal(p.syscalls.find((s) => s.names.includes("clone3"))!.errnoRet, 38, "clone3 → ENOSYS so libc falls back to clone");
});

test("architectures follow the host CPU", () => {
  assert.deepEqual(seccompArchitectures("arm64"), ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.deepEqual(seccompArchitectures("riscv64"), []);
});
