// `joblet doctor`: is this host fit to run jobs with every limit enforced, and is the daemon's config
// usable? Runs every check (none stops the others, except an unreadable config) and collects one line each.
import { loadDaemonConfig, type DaemonConfig } from "../../shared/config/daemon.js";
import { failFrom, fail, ok, type CheckResult } from "./check.js";
import { checkCertificates } from "./certs.js";
import { checkCgroups } from "./cgroups.js";
import { checkCrl } from "./crl.js";
import { checkTestJob } from "./job.js";
import { checkKernel } from "./kernel.js";
import { checkPorts } from "./port.js";
import { checkPrograms } from "./programs.js";
import { checkStateDirs } from "./state.js";
import { checkWorkVolume } from "./work-volume.js";

/** Everything the doctor found. */
export interface DoctorReport {
  /** The config file checked (the one found on the search path when none was given), if any. */
  configFile: string | undefined;
  /** True when no check failed: jobs can run here with every limit enforced (warnings allowed). */
  ok: boolean;
  checks: CheckResult[];
  /** Wall time of all checks, ms. */
  durationMs: number;
}

/** Runs every check against the config at `configFile` (or the first on the search path). */
export async function runDoctor(configFile?: string): Promise<DoctorReport> {
  const started = performance.now();
  const checks: CheckResult[] = [];
  let config: DaemonConfig | undefined;
  try {
    config = loadDaemonConfig(configFile);
    checks.push(ok("config", "config", `${config.file} is valid`));
  } catch (err) {
    checks.push(failFrom("config", "config", err, "fix the config file; `joblet init --dir DIR` writes a complete one"));
  }
  if (config) {
    if (process.getuid?.() !== 0) {
      checks.push(fail("root", "privileges", `running as uid ${process.getuid?.()}; the daemon, cgroup and job checks need root`, "run joblet doctor as root (sudo)"));
    }
    const programs = await checkPrograms(config);
    checks.push(...programs.results);
    checks.push(...(await checkCgroups(config)));
    checks.push(...checkKernel(config));
    checks.push(...checkStateDirs(config));
    // Listed only with a cap: without one there is nothing on this host to check.
    if (config.limits.workSizeBytes > 0) checks.push(await checkWorkVolume(config));
    checks.push(...checkCertificates(config));
    // Listed only when set, like the /work cap.
    if (config.crlFile) checks.push(await checkCrl(config));
    checks.push(...(await checkPorts(config)));
    checks.push(await checkTestJob(config, programs.runtimePath, programs.conmonPath));
  }
  return {
    configFile: config?.file ?? configFile,
    ok: checks.every((c) => c.status !== "fail"),
    checks,
    durationMs: Math.round(performance.now() - started),
  };
}
