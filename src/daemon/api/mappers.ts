// Conversions between wire messages and the job service's types.
import type { Job, RunJobReq } from "../../shared/proto/joblet.js";
import type { RunRequest } from "../jobs/validate.js";
import type { JobRecord } from "../store/record.js";

/** A RunJobReq as the job service takes it. */
export function toRunRequest(req: RunJobReq): RunRequest {
  return {
    command: req.command,
    args: req.args,
    maxCpuPercent: req.maxCPU,
    cpuCores: req.cpuCores,
    maxMemoryMB: req.maxMemory,
    maxIoBps: req.maxIOBPS,
    timeoutMs: req.timeoutMs,
    env: req.env,
    workdir: req.workdir,
    network: req.network,
  };
}

/** A job record as the wire's Job (also the shape of RunJobRes and GetJobStatusRes). */
export function toJob(j: JobRecord): Job {
  return {
    id: j.id,
    command: j.command,
    args: j.args,
    maxCPU: j.limits.maxCpuPercent,
    cpuCores: j.limits.cpuCores,
    maxMemory: j.limits.maxMemoryMB,
    maxIOBPS: j.limits.maxIoBps,
    status: j.status,
    startTime: j.startTime ?? "",
    endTime: j.endTime ?? "",
    exitCode: j.exitCode ?? 0,
    signal: j.signal ?? "",
    oomKilled: j.oomKilled,
    reason: j.reason ?? "",
    usage: j.usage,
    createTime: j.createTime,
    timeoutMs: j.timeoutMs,
    timedOut: j.timedOut,
    workdir: j.workdir,
    network: j.network,
    upload: j.upload,
  };
}
