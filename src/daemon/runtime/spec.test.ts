import assert from "node:assert/strict";
import { test } from "node:test";
import { buildJobSpec, type JobSpecInput } from "./spec.js";

const base: JobSpecInput = {
  args: ["sh", "-c", "true"],
  env: ["PATH=/usr/bin"],
  cwd: "/work/src",
  hostname: "job-12345678",
  rootfsDir: "/state/rootfs",
  etcDir: "/state/etc",
  workDir: "/state/jobs/x/work",
  extraRoBinds: [],
  cgroupsPath: "/joblet/x",
  network: "host",
  tmpBytes: 1 << 20,
  resources: { cpuPeriodUs: 100_000, cpuQuotaUs: 50_000, cpus: "1", mems: "0", memoryBytes: 64 << 20, limitSwap: true, pidsLimit: 32, io: { major: 254, minor: 0, bytesPerSec: 1000 } },
};

type Spec = {
  process: { cwd: string; noNewPrivileges: boolean };
  root: { readonly: boolean };
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: { namespaces: { type: string }[]; resources: Record<string, unknown>; maskedPaths: string[]; uidMappings?: unknown[]; cgroupsPath: string };
};

test("limits land in the OCI resources in the kernel's units", () => {
  const s = buildJobSpec(base) as unknown as Spec;
  assert.deepEqual(s.linux.resources.cpu, { quota: 50_000, period: 100_000, cpus: "1", mems: "0" });
  assert.deepEqual(s.linux.resources.memory, { limit: 64 << 20, swap: 64 << 20 });
  assert.deepEqual(s.linux.resources.pids, { limit: 32 });
  assert.deepEqual(s.linux.resources.blockIO, {
    throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1000 }],
    throttleWriteBpsDevice: [{ major: 254, minor: 0, rate: 1000 }],
  });
  assert.equal(s.linux.cgroupsPath, "/joblet/x");
  assert.equal(s.process.cwd, "/work/src");
  assert.equal(s.process.noNewPrivileges, true);
  assert.equal(s.root.readonly, true);
});

test("the host's /etc is never mounted; /usr is read-only; /work is the only writable bind", () => {
  const s = buildJobSpec(base) as unknown as Spec;
  const etc = s.mounts.find((m) => m.destination === "/etc")!;
  assert.equal(etc.source, "/state/etc");
  assert.ok(s.mounts.every((m) => m.source !== "/etc"));
  assert.ok(s.mounts.find((m) => m.destination === "/usr")!.options.includes("ro"));
  const writableBinds = s.mounts.filter((m) => m.type === "bind" && !m.options.includes("ro"));
  assert.deepEqual(writableBinds.map((m) => m.destination), ["/work"]);
  assert.ok(s.mounts.find((m) => m.destination === "/tmp")!.options.includes(`size=${1 << 20}`));
  assert.ok(s.mounts.find((m) => m.destination === "/dev/shm")!.options.includes(`size=${1 << 20}`));
});

test("namespaces: a network namespace only for network none, a user namespace only with an id map", () => {
  const types = (i: JobSpecInput) => (buildJobSpec(i) as unknown as Spec).linux.namespaces.map((n) => n.type);
  assert.deepEqual(types(base), ["pid", "ipc", "uts", "mount"]);
  assert.deepEqual(types({ ...base, network: "none" }), ["pid", "ipc", "uts", "mount", "network"]);
  const mapped = { ...base, idMap: { hostUid: 100_000, hostGid: 100_000, size: 65_536 } };
  assert.deepEqual(types(mapped), ["pid", "ipc", "uts", "mount", "user"]);
  assert.deepEqual((buildJobSpec(mapped) as unknown as Spec).linux.uidMappings, [{ containerID: 0, hostID: 100_000, size: 65_536 }]);
});

test("/sys: sysfs normally; in a user namespace on the host network, a read-only rbind with cgroups masked", () => {
  const sys = (i: JobSpecInput) => (buildJobSpec(i) as unknown as Spec).mounts.find((m) => m.destination === "/sys")!;
  assert.equal(sys(base).type, "sysfs");
  const mapped = { ...base, idMap: { hostUid: 100_000, hostGid: 100_000, size: 65_536 } };
  assert.equal(sys(mapped).type, "bind");
  assert.ok(sys(mapped).options.includes("rbind") && sys(mapped).options.includes("ro"));
  assert.ok((buildJobSpec(mapped) as unknown as Spec).linux.maskedPaths.includes("/sys/fs/cgroup"));
  assert.equal(sys({ ...mapped, network: "none" }).type, "sysfs");
});

test("unlimited resources are left out rather than set to 0", () => {
  const s = buildJobSpec({ ...base, resources: { cpuPeriodUs: 100_000, limitSwap: false, pidsLimit: 10 } }) as unknown as Spec;
  assert.equal(s.linux.resources.cpu, undefined);
  assert.equal(s.linux.resources.memory, undefined);
  assert.equal(s.linux.resources.blockIO, undefined);
});
