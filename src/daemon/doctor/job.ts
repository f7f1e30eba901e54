// The end-to-end check: one real job, started the way the daemon starts jobs (bundle, conmon, runtime) with
// this config's runtime, monitor, seccomp and user namespace settings and every limit set, in a private
// temporary state dir so that a running daemon is not disturbed. It passes when the job prints what it was
// told to and exits 0; everything it made is removed.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { newJobId } from "../../shared/ids.js";
import { blockDeviceFor } from "../cgroups/blockdev.js";
import { formatCpuList, onlineCpus, onlineMems } from "../cgroups/cpuset.js";
import { createCgroupManager } from "../cgroups/factory.js";
import { prepareHostFs } from "../runtime/hostfs.js";
import { JobRuntime } from "../runtime/job-runtime.js";
import { seccompForSetting } from "../runtime/seccomp.js";
import { idMapForBase } from "../runtime/spec.js";
import type { JobResources } from "../runtime/spec.js";
import { fail, failFrom, formatBytes, ok, type CheckResult } from "./check.js";
import { existingAncestor } from "./cgroups.js";

/** Size of the uid/gid range a job's user namespace maps, as the daemon maps it. */
/** How long the test job may take to start and end, ms. */
const JOB_TIMEOUT_MS = 15_000;
const MARKER = "joblet-doctor-ok";

/** Runs one job with every limit; `runtimePath` and `conmonPath` are the resolved programs. */
export async function checkTestJob(config: DaemonConfig, runtimePath: string | undefined, conmonPath: string | undefined): Promise<CheckResult> {
  const id = "job";
  const title = "test job";
  if (!runtimePath || !conmonPath) return fail(id, title, "not run: the runtime or conmon is missing", "fix the runtime and monitor checks above");
  let seccomp: Record<string, unknown> | undefined;
  try {
    seccomp = seccompForSetting(config.seccomp);
  } catch (err) {
    return fail(id, title, (err as Error).message, "point security.seccomp at a readable OCI seccomp profile (JSON)");
  }
  const cgroups = createCgroupManager();
  const jobId = newJobId();
  const cgPath = `${config.cgroupParent}/${jobId}`;
  const parentExisted = cgroups.exists(config.cgroupParent);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "joblet-doctor-"));
  let runtime: JobRuntime | undefined;
  const started = performance.now();
  try {
    // A job's root may be an unprivileged host uid (user namespace): it must be able to pass through.
    chmodSync(stateDir, 0o711);
    cgroups.ensureParent(config.cgroupParent);
    runtime = new JobRuntime({
      stateDir,
      runDir: stateDir,
      jobsDir: path.join(stateDir, "jobs"),
      runtimePath,
      conmonPath,
      hostFs: prepareHostFs(stateDir),
      tmpBytes: config.limits.tmpSizeBytes,
      seccomp,
      idMap: idMapForBase(config.idMapBase),
      workSizeBytes: config.limits.workSizeBytes,
    });
    const limits: string[] = ["cpu 50%", "memory 64 MiB", "pids 32", "cpuset"];
    const resources: JobResources = {
      cpuPeriodUs: 100_000,
      cpuQuotaUs: 50_000,
      cpus: formatCpuList(onlineCpus().slice(0, 1)),
      mems: formatCpuList(onlineMems()),
      memoryBytes: 64 * 1024 * 1024,
      limitSwap: cgroups.capabilities().memorySwap,
      pidsLimit: 32,
    };
    if (resources.limitSwap) limits.push("no swap");
    try {
      const dev = blockDeviceFor(existingAncestor(config.jobsDir));
      resources.io = { major: dev.major, minor: dev.minor, bytesPerSec: 4 * 1024 * 1024 };
      limits.push(`io 4 MiB/s on ${dev.name}`);
    } catch {
      // No block device: the IO checks report it; the job runs without an IO limit.
    }
    await runtime.prepareWorkDir(jobId);
    if (config.limits.workSizeBytes > 0) limits.push(`/work ${formatBytes(config.limits.workSizeBytes)} volume`);
    await runtime.start(jobId, {
      args: ["sh", "-c", `echo ${MARKER}`],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/work"],
      cwd: "/work",
      hostname: "joblet-doctor",
      cgroupsPath: cgPath,
      network: config.network,
      resources,
    });
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    let code: number | undefined;
    while ((code = runtime.exitCode(jobId)) === undefined) {
      if (Date.now() > deadline) return fail(id, title, `the test job did not end within ${JOB_TIMEOUT_MS / 1000} s`, "look for stuck runc or conmon processes");
      await sleep(10);
    }
    await runtime.waitMonitorExit(jobId, 5_000);
    const log = readLogText(runtime.paths(jobId).logPath);
    const ms = Math.round(performance.now() - started);
    if (code !== 0 || !log.includes(MARKER)) {
      return fail(id, title, `the test job exited with ${code}; its output: ${JSON.stringify(log.slice(0, 300))}`, "run a job by hand with `runc` to see why; check the runtime and cgroup checks above");
    }
    return ok(id, title, `ran under ${path.basename(conmonPath)} + ${path.basename(runtimePath)} with ${limits.join(", ")}${seccomp ? ", seccomp" : ""}${config.idMapBase !== undefined ? ", user namespace" : ""}; exit 0 in ${ms} ms`);
  } catch (err) {
    // crun (1.8 here) refuses hosts whose cgroup2 mount holds any controller, whatever the v1 layout offers.
    if (/hybrid mode not supported/.test((err as Error)?.message ?? "")) {
      return fail(id, title, (err as Error).message, "crun cannot run jobs on this hybrid cgroup layout: set runtime.path: runc");
    }
    return failFrom(id, title, err, "check the runtime, cgroup and kernel checks above; the runtime's error names the limit or feature it could not set up");
  } finally {
    await runtime?.remove(jobId).catch(() => undefined);
    let volumeLeft = false;
    try {
      // Unmounts the job's /work volume if remove did not: the state dir must not be deleted through it.
      runtime?.forget(jobId);
    } catch {
      volumeLeft = true;
    }
    await cgroups.remove(cgPath).catch(() => undefined);
    if (!parentExisted) await cgroups.remove(config.cgroupParent).catch(() => undefined);
    if (!volumeLeft) rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The output lines of a conmon k8s-file log ("<time> <stream> <F|P> <text>"), joined. */
function readLogText(file: string): string {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .map((l) => l.split(" ").slice(3).join(" "))
      .join("\n");
  } catch {
    return "";
  }
}
