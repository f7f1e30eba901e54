// Builds the OCI runtime spec (config.json) of one job. A pure function of its input: everything the job
// may see or use is decided here, and runc enforces it.

/** Resource limits of one job, in the units the kernel takes. Absent = unlimited. */
export interface JobResources {
  /** CFS quota per period, microseconds (cpu.cfs_quota_us); with periodUs gives the CPU share. */
  cpuQuotaUs?: number;
  cpuPeriodUs: number;
  /** cpuset CPU list ("0-1,3"), already validated against the host's online CPUs. */
  cpus?: string;
  /** cpuset memory nodes; needed with `cpus` (a v1 cpuset with empty mems cannot take tasks). */
  mems?: string;
  memoryBytes?: number;
  /** Set memory+swap to the memory limit (no swap beyond it); only where the kernel accounts swap. */
  limitSwap: boolean;
  pidsLimit: number;
  /** Read and write bandwidth limit on one block device, bytes per second. */
  io?: { major: number; minor: number; bytesPerSec: number };
}

/** Everything the spec of one job depends on. */
export interface JobSpecInput {
  /** The job's process: args[0] is looked up in PATH inside the job when not absolute. */
  args: string[];
  env: string[];
  /** Working directory inside the job: /work or a directory below it. */
  cwd: string;
  hostname: string;
  /** Absolute path of the (shared, read-only) root filesystem directory. */
  rootfsDir: string;
  /** Host directory bind-mounted read-only as the job's /etc (a minimal one the daemon builds). */
  etcDir: string;
  /** Host directory bind-mounted read-write as /work, the job's working directory. */
  workDir: string;
  /** Host top-level directories that are real directories (not symlinks into /usr), bound read-only. */
  extraRoBinds: string[];
  /** Absolute cgroup path (relative to the cgroup mount), e.g. "/joblet/<id>". */
  cgroupsPath: string;
  /** "none": a private network namespace with only loopback; "host": the host's network. */
  network: "host" | "none";
  tmpBytes: number;
  resources: JobResources;
  /** The OCI `linux.seccomp` section; undefined = no filter. */
  seccomp?: Record<string, unknown>;
  /** Run the job in a user namespace whose ids 0…size-1 are these host ids; undefined = no user namespace. */
  idMap?: IdMap;
}

/** A user namespace mapping: the job's uid/gid 0 is host `hostUid`/`hostGid`, for `size` consecutive ids. */
export interface IdMap {
  hostUid: number;
  hostGid: number;
  size: number;
}

/** How many ids a job's user namespace maps (0…65535, what a Linux distribution's tools expect). */
export const ID_MAP_SIZE = 65_536;

/** The mapping for `security.idMapBase` (undefined when user namespaces are off). */
export function idMapForBase(base: number | undefined): IdMap | undefined {
  return base === undefined ? undefined : { hostUid: base, hostGid: base, size: ID_MAP_SIZE };
}

/** Capabilities a job keeps: Docker's default set without NET_RAW and MKNOD. */
export const JOB_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
] as const;

// runc's defaults: kernel interfaces a job must not read (masked) or write (read-only).
const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** The OCI runtime spec for one job. */
export function buildJobSpec(input: JobSpecInput): Record<string, unknown> {
  const roBind = ["rbind", "ro", "nosuid", "nodev"];
  const mounts = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    // Like /tmp: shared memory is a tmpfs too, capped at the same size (and charged to the job's memory).
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${input.tmpBytes}`] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    sysMount(input),
    { destination: "/usr", type: "bind", source: "/usr", options: roBind },
    ...input.extraRoBinds.map((dir) => ({ destination: dir, type: "bind", source: dir, options: roBind })),
    { destination: "/etc", type: "bind", source: input.etcDir, options: [...roBind, "noexec"] },
    { destination: "/work", type: "bind", source: input.workDir, options: ["rbind", "rw", "nosuid", "nodev"] },
    // tmpfs pages count against the job's memory cgroup, and `size` caps /tmp on its own.
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", `size=${input.tmpBytes}`] },
  ];

  const namespaces: { type: string }[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (input.network === "none") namespaces.push({ type: "network" });
  if (input.idMap) namespaces.push({ type: "user" });

  const r = input.resources;
  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: "rwm" }],
    pids: { limit: r.pidsLimit },
  };
  const cpu: Record<string, unknown> = {};
  if (r.cpuQuotaUs !== undefined) Object.assign(cpu, { quota: r.cpuQuotaUs, period: r.cpuPeriodUs });
  if (r.cpus !== undefined) Object.assign(cpu, { cpus: r.cpus, mems: r.mems ?? "0" });
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (r.memoryBytes !== undefined) {
    // memory.swap in the OCI spec is memory+swap; equal to the limit means no swap beyond it.
    resources.memory = { limit: r.memoryBytes, ...(r.limitSwap ? { swap: r.memoryBytes } : {}) };
  }
  if (r.io) {
    const dev = [{ major: r.io.major, minor: r.io.minor, rate: r.io.bytesPerSec }];
    resources.blockIO = { throttleReadBpsDevice: dev, throttleWriteBpsDevice: dev };
  }

  const caps = [...JOB_CAPABILITIES];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: input.args,
      env: input.env,
      cwd: input.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: true,
    },
    root: { path: input.rootfsDir, readonly: true },
    hostname: input.hostname,
    mounts,
    linux: {
      cgroupsPath: input.cgroupsPath,
      resources,
      namespaces,
      maskedPaths: hostSysBound(input) ? [...MASKED_PATHS, "/sys/fs/cgroup"] : MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(input.seccomp && { seccomp: input.seccomp }),
      ...(input.idMap && {
        uidMappings: [{ containerID: 0, hostID: input.idMap.hostUid, size: input.idMap.size }],
        gidMappings: [{ containerID: 0, hostID: input.idMap.hostGid, size: input.idMap.size }],
      }),
    },
  };
}

/**
 * /sys, read-only. The kernel lets a user namespace mount sysfs only together with a network namespace it
 * owns, and refuses a non-recursive bind of /sys there (it would uncover what its submounts hide); a job in
 * a user namespace on the host's network gets a recursive read-only bind of the host's /sys, with the
 * cgroup tree masked (see maskedPaths) so it cannot see other jobs' cgroups.
 */
function hostSysBound(input: JobSpecInput): boolean {
  return input.idMap !== undefined && input.network === "host";
}

function sysMount(input: JobSpecInput): { destination: string; type: string; source: string; options: string[] } {
  if (hostSysBound(input)) {
    return { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", "ro", "nosuid", "noexec", "nodev"] };
  }
  return { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] };
}
