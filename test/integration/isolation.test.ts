// Isolation of a job, proved from inside it against the real daemon: its own PID, IPC, UTS and mount
// namespaces, a read-only root with a private /work and a size-limited /tmp, no host secrets, no
// dangerous capabilities, and a process tree that does not hang off the daemon (it survives SIGKILL of it).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { Job, JobletServiceClient } from "../../src/shared/proto/joblet.js";
import { TestDaemon } from "./harness.js";

/** /tmp size given to this file's daemon: not the 64 MB default, so the test sees the config applied. */
const TMP_SIZE_MB = 16;
const CAP_SYS_ADMIN = 21;

let d: TestDaemon;
let client: JobletServiceClient;

before(async () => {
  d = await TestDaemon.start({ filesystem: { tmpSizeMB: TMP_SIZE_MB } });
  client = d.client();
});
after(async () => {
  client?.close();
  await d?.destroy();
});

/** Runs `script` with sh in a job and returns rnx's result (the job's output and exit code). */
function sh(script: string, ...args: string[]) {
  return d.rnx(["run", "sh", "-c", script, "sh", ...args]);
}

function getStatus(id: string): Promise<Job> {
  return new Promise((resolve, reject) => client.getJobStatus({ id }, (err, res) => (err ? reject(err) : resolve(res as Job))));
}

/** Starts a job detached and returns its ID. */
async function runDetached(args: string[]): Promise<string> {
  const r = await d.rnx(["run", "--detach", ...args]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f-]{8,}$/);
  return id;
}

/** Waits until job `id` has ended and everything about its end is recorded. */
async function waitEnded(id: string, timeoutMs = 30_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getStatus(id);
    if (job.endTime) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function stop(id: string): Promise<void> {
  const r = await d.rnx(["stop", id]);
  assert.equal(r.code, 0, r.stderr);
}

/** The PID of job `id`'s process on the host, from the runtime's state. */
function jobHostPid(id: string): number {
  const state = d.runtimeState(id);
  assert.ok(state, `runc knows job ${id}`);
  const pid = state.pid;
  assert.ok(pid > 1, `runc state pid ${pid}`);
  return pid;
}

/** [state, ppid, comm] of a host process, or undefined once it is gone. */
function procStat(pid: number): { state: string; ppid: number; comm: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const comm = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
  const [state, ppid] = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: state!, ppid: Number(ppid), comm };
}

/** The PIDs of `pid`'s ancestors, parent first, up to PID 1. */
function ancestors(pid: number): number[] {
  const out: number[] = [];
  for (let p = procStat(pid)?.ppid; p !== undefined && p > 0; p = procStat(p)?.ppid) out.push(p);
  return out;
}

function isRunning(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== "Z" && s.state !== "X";
}

test("PID namespace: the job is PID 1 and sees none of the host's processes", async () => {
  const daemon = d.pid;
  // The shell execs nothing: $$ is the job's PID 1; ps and the /proc listing show what the job can see.
  const r = await sh('echo "self $$"; ps -eo pid=,ppid=,comm=; for p in "$@"; do test -e /proc/$p && echo "visible $p"; done; true', String(process.pid), String(daemon));
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "self 1");
  const procs = lines.filter((l) => /^\s*\d+\s+\d+\s/.test(l)).map((l) => l.trim().split(/\s+/));
  // Only the shell (PID 1, parent 0 = outside the namespace) and ps, its child.
  assert.deepEqual(
    procs.map(([pid, ppid, comm]) => [pid === "1" ? "1" : "child", ppid, comm]),
    [
      ["1", "0", "sh"],
      ["child", "1", "ps"],
    ],
    r.stdout,
  );
  assert.ok(!lines.some((l) => l.startsWith("visible")), `host processes visible inside the job:\n${r.stdout}`);
  // The control: the same PIDs exist on the host.
  assert.ok(existsSync(`/proc/${process.pid}`) && existsSync(`/proc/${daemon}`));
});

test("UTS namespace: the job's hostname is job-<first 8 chars of its ID>, not the host's", async () => {
  const id = await runDetached(["hostname"]);
  const job = await waitEnded(id);
  assert.equal(job.status, "COMPLETED");
  const log = await d.rnx(["log", id]);
  assert.equal(log.code, 0, log.stderr);
  assert.equal(log.stdout, `job-${id.slice(0, 8)}\n`);
  assert.notEqual(log.stdout.trim(), os.hostname());
});

test("namespaces: pid, ipc, uts, mnt and user differ from the daemon's; a host SysV segment is invisible inside", async () => {
  const daemon = d.pid;
  const mk = spawnSync("ipcmk", ["-M", "4096"], { encoding: "utf8" });
  assert.equal(mk.status, 0, mk.stderr);
  const shmId = /(\d+)\s*$/.exec(mk.stdout.trim())?.[1];
  assert.ok(shmId, mk.stdout);
  try {
    // The control: the host sees its segment.
    assert.match(readFileSync("/proc/sysvipc/shm", "utf8"), new RegExp(`^\\s*-?\\d+\\s+${shmId}\\s`, "m"));
    const r = await sh("for ns in pid ipc uts mnt user; do echo $ns $(readlink /proc/self/ns/$ns); done; echo segments; tail -n +2 /proc/sysvipc/shm");
    assert.equal(r.code, 0, r.stderr);
    const [nsPart, segments] = r.stdout.split("segments\n");
    for (const line of nsPart!.trim().split("\n")) {
      const [ns, inside] = line.split(" ");
      const host = readlinkSync(`/proc/${daemon}/ns/${ns}`);
      assert.match(inside!, new RegExp(`^${ns}:\\[\\d+\\]$`));
      assert.notEqual(inside, host, `${ns} namespace shared with the daemon`);
    }
    assert.equal(segments!.trim(), "", `SysV shared memory visible inside the job:\n${segments}`);
  } finally {
    spawnSync("ipcrm", ["-m", shmId]);
  }
});

test("user namespace: the job's root is an unprivileged uid on the host", async () => {
  const id = await runDetached(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; sleep 30 & wait"]);
  try {
    const pid = jobHostPid(id);
    const hostUid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    assert.ok(hostUid > 0, `the job's root is host uid ${hostUid}`);
    await stop(id);
    const log = await d.rnx(["log", id]);
    const [uidMap, gidMap, uidInside] = log.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
    assert.deepEqual(uidMap!.slice(0, 2), [0, hostUid], log.stdout);
    assert.notEqual(gidMap![1], 0, log.stdout);
    assert.deepEqual(uidInside, [0]);
  } finally {
    if (!(await getStatus(id)).endTime) await stop(id);
  }
});

test("root filesystem: /, /usr, /bin and /etc are read-only; /work is the job's cwd, writable, and on the host", async () => {
  const ro = await sh('for p in /probe /usr/probe /bin/probe /etc/probe; do touch "$p" && echo "wrote $p"; done; true');
  assert.equal(ro.code, 0, ro.stderr);
  assert.equal(ro.stdout, "", `wrote to a read-only path:\n${ro.stdout}`);
  for (const p of ["/probe", "/usr/probe", "/bin/probe", "/etc/probe"]) {
    assert.match(ro.stderr, new RegExp(`'${p}': Read-only file system`), ro.stderr);
  }

  const id = await runDetached(["sh", "-c", 'pwd; echo "written by $JOBLET_JOB_ID" > /work/proof']);
  const job = await waitEnded(id);
  assert.equal(job.status, "COMPLETED", job.reason);
  assert.equal((await d.rnx(["log", id])).stdout, "/work\n");
  const onHost = path.join(d.dir, "state", "jobs", id, "work", "proof");
  assert.equal(readFileSync(onHost, "utf8"), `written by ${id}\n`);
});

test("/tmp: a tmpfs of the configured size, sticky and world-writable; writing past the size fails", async () => {
  const sizeKiB = TMP_SIZE_MB * 1024;
  const r = await sh(
    [
      "grep ' /tmp ' /proc/mounts",
      "stat -c 'mode %a' /tmp",
      `head -c ${TMP_SIZE_MB + 4}M /dev/zero > /tmp/big; echo "head $?"`,
      "stat -c 'big %s' /tmp/big",
      "rm /tmp/big",
      // Not only root: an unprivileged user in the job can use /tmp too.
      "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x > /tmp/nobody' && echo 'nobody wrote'",
    ].join("; "),
  );
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, new RegExp(`^\\S+ /tmp tmpfs rw,.*\\bsize=${sizeKiB}k\\b`), r.stdout);
  assert.equal(lines[1], "mode 1777");
  assert.notEqual(lines[2], "head 0", "writing past the tmpfs size succeeded");
  assert.match(r.stderr, /No space left on device/);
  assert.equal(lines[3], `big ${TMP_SIZE_MB * 1024 * 1024}`);
  assert.equal(lines[4], "nobody wrote", r.stderr);
});

test("no secrets: no /etc/shadow, no /root, a minimal /etc, and neither the daemon's config nor its state dir", async () => {
  const config = parseYaml(readFileSync(d.configFile, "utf8")) as { security: { serverKey: string } };
  // A line of the server's private key, to look for in every file the job can read outside /usr, /proc, /sys.
  const keyLine = config.security.serverKey.split("\n")[1]!;
  assert.ok(keyLine.length >= 40, "the key's first base64 line");
  const stateDir = path.join(d.dir, "state");
  const secrets = ["/etc/shadow", "/etc/gshadow", "/root", d.configFile, d.dir, stateDir, path.join(stateDir, "jobs.db"), "/etc/joblet", "/opt/joblet"];
  // The control: the daemon's files are there on the host.
  assert.ok(existsSync(d.configFile) && existsSync(stateDir));

  const r = await sh(
    // /etc/passwd and /work/control are the controls: the probe finds what is there.
    'key=$1; shift; printf "%s\\n" "$key" > /work/control; for p in "$@"; do test -e "$p" && echo "present $p"; done; echo etc $(ls -A /etc); grep -rlF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr -e "$key" / 2>/dev/null; true',
    keyLine,
    "/etc/passwd",
    ...secrets,
  );
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.deepEqual(lines.filter((l) => l.startsWith("present")), ["present /etc/passwd"], r.stdout);
  const etcLine = lines.find((l) => l.startsWith("etc "));
  assert.ok(etcLine, r.stdout);
  const etc = etcLine.split(" ").slice(1).sort();
  for (const required of ["group", "hosts", "nsswitch.conf", "passwd", "ssl"]) assert.ok(etc.includes(required), `/etc lacks ${required}: ${etc.join(" ")}`);
  const allowed = new Set(["alternatives", "group", "hosts", "ld.so.cache", "localtime", "mime.types", "nsswitch.conf", "os-release", "passwd", "protocols", "resolv.conf", "services", "ssl"]);
  assert.deepEqual(etc.filter((n) => !allowed.has(n)), [], `unexpected files in the job's /etc: ${etc.join(" ")}`);
  assert.deepEqual(lines.filter((l) => l.startsWith("/")), ["/work/control"], `files holding the server key inside the job:\n${r.stdout}`);
});

test("capabilities: no_new_privs, no CAP_SYS_ADMIN; mount and sethostname are refused", async () => {
  const r = await sh(
    [
      "grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/self/status",
      "mount -t tmpfs probe /work; echo \"mount $?\"",
      "hostname changed-by-job; echo \"hostname $?\"",
      "echo \"now $(hostname)\"",
    ].join("; "),
  );
  assert.equal(r.code, 0, r.stderr);
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, "m").exec(r.stdout)?.[1];
  assert.equal(field("NoNewPrivs"), "1");
  for (const name of ["CapEff", "CapBnd"]) {
    const mask = BigInt(`0x${field(name)}`);
    assert.ok(mask !== 0n, `${name} parsed as empty: ${r.stdout}`);
    assert.equal((mask >> BigInt(CAP_SYS_ADMIN)) & 1n, 0n, `${name} ${field(name)} includes CAP_SYS_ADMIN`);
  }
  assert.match(r.stdout, /^mount [1-9]\d*$/m);
  assert.match(r.stderr, /mount: \/work: permission denied/);
  assert.match(r.stdout, /^hostname [1-9]\d*$/m);
  assert.doesNotMatch(r.stdout, /now changed-by-job/);
});

test("TLS and name lookup work inside: the host's CA bundle is there and loads; localhost resolves", async () => {
  const hostBundle = "/etc/ssl/certs/ca-certificates.crt";
  assert.ok(existsSync(hostBundle), `the host has no ${hostBundle}; install ca-certificates`);
  const r = await sh(
    `sha256sum ${hostBundle}; python3 -c "import ssl; print('cas', ssl.create_default_context().cert_store_stats()['x509_ca'])"; getent hosts localhost`,
  );
  assert.equal(r.code, 0, r.stderr);
  const hostSha = createHash("sha256").update(readFileSync(hostBundle)).digest("hex");
  assert.match(r.stdout, new RegExp(`^${hostSha}  ${hostBundle}$`, "m"));
  const cas = Number(/^cas (\d+)$/m.exec(r.stdout)?.[1]);
  assert.ok(cas > 0, `Python's default TLS context loaded no CA certificates:\n${r.stdout}`);
  assert.match(r.stdout, /^(127\.0\.0\.1|::1)\s+localhost\b/m);
});

test("the daemon is not the job's parent: the job runs under conmon and outlives a SIGKILLed daemon", async () => {
  const id = await runDetached(["sh", "-c", "sleep 300 & wait"]);
  const pid = jobHostPid(id);
  const daemon = d.pid;
  const chain = ancestors(pid);
  assert.equal(procStat(chain[0]!)?.comm, "conmon", `parent of the job: ${JSON.stringify(procStat(chain[0]!))}`);
  assert.ok(!chain.includes(daemon), `daemon ${daemon} is an ancestor of job process ${pid}: ${chain.join(" <- ")}`);

  await d.stopProcess("SIGKILL");
  assert.ok(!isRunning(daemon), "the daemon survived SIGKILL");
  await sleep(300);
  assert.ok(isRunning(pid), "the job died with the daemon");
  assert.ok(isRunning(chain[0]!), "conmon died with the daemon");

  await d.launch();
  // The channel is backing off after the refused connections: wait until it has reconnected.
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 15_000, (err) => (err ? reject(err) : resolve())));
  assert.equal((await getStatus(id)).status, "RUNNING");
  await stop(id);
  const job = await waitEnded(id);
  assert.equal(job.status, "STOPPED");
  assert.ok(!isRunning(pid), "the job's process outlived rnx stop");
});

test("every job above has ended and left no cgroup and no container behind", async () => {
  const jobs = await new Promise<Job[]>((resolve, reject) => client.listJobs({}, (err, res) => (err ? reject(err) : resolve(res!.jobs))));
  assert.ok(jobs.length >= 8, `jobs run by this file: ${jobs.length}`);
  for (const job of jobs) assert.notEqual(job.endTime, "", `job ${job.id} (${job.command}) is ${job.status}`);
  assert.deepEqual(d.leftoverCgroups(), []);
  assert.deepEqual(d.runtimeContainers(), []);
});
