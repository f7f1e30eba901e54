// `rnx run true`, the whole CLI process end to end, against bare `runc run` of the same spec (copied from a
// real Joblet job) and against `ssh localhost true` with key auth (a private sshd on a free port, started
// and stopped here; skipped with the reason printed when sshd or ssh-keygen is missing or it does not work).
// ssh runs the command through the login shell, and bash reads ~/.bashrc when started by sshd: a heavy rc
// (pyenv, conda) adds most of a second. So ssh is measured twice: as root (whatever root's rc does) and as a
// throwaway user whose shell is /bin/sh (no rc), created with useradd here and removed with userdel.
// Run as root: node --import tsx bench/run-true.ts   (BENCH_RUNS=N to change the run count)
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT, TestDaemon, freePort } from "../test/integration/harness.js";
import { bundleFromDaemon, hostLine, medians, ms, row, writeRunBundle } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const RNX = path.join(ROOT, "bin", "rnx");

/** A private sshd accepting one generated key for root, or the reason it could not be set up. */
interface Sshd {
  /** ssh … root@localhost true */
  argv: string[];
  /** ssh … <throwaway /bin/sh user>@localhost true, or undefined when useradd failed */
  cleanArgv: string[] | undefined;
  stop(): void;
}

/** Starts sshd -D on a free loopback port with its own host key, key file and config in a temp dir. */
async function startSshd(): Promise<Sshd | string> {
  const sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"].find(existsSync);
  if (!sshd) return "sshd not installed (apt-get install -y openssh-server)";
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-bench-ssh-"));
  chmodSync(dir, 0o755);
  let proc: ChildProcess | undefined;
  const user = `jbench${process.pid}`;
  // "-p *": no password, but not locked ("!"), which sshd without PAM refuses even for key auth.
  const added = spawnSync("useradd", ["-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", user], { stdio: "ignore" }).status === 0;
  const stop = (): void => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    if (added) spawnSync("userdel", [user], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  };
  for (const [file, type] of [["host_key", "ed25519"], ["client_key", "ed25519"]]) {
    const r = spawnSync("ssh-keygen", ["-q", "-t", type!, "-N", "", "-f", path.join(dir, file!)], { encoding: "utf8" });
    if (r.status !== 0) {
      stop();
      return `ssh-keygen failed: ${r.stderr.trim()}`;
    }
  }
  // Read by sshd as the logging-in user: world-readable.
  copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
  chmodSync(path.join(dir, "authorized_keys"), 0o644);
  const port = await freePort();
  writeFileSync(
    path.join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${path.join(dir, "host_key")}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // The key lives in a temp dir under /tmp (world-writable): StrictModes would refuse it.
      "StrictModes no",
      "",
    ].join("\n"),
  );
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  proc = spawn(sshd, ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const argv = [
    "ssh", "-i", path.join(dir, "client_key"), "-p", String(port),
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "root@localhost", "true",
  ];
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    if (proc.exitCode !== null) {
      stop();
      return `sshd exited: ${err.trim()}`;
    }
    if (spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore" }).status === 0) {
      const cleanArgv = [...argv.slice(0, -2), `${user}@localhost`, "true"];
      const ok = added && spawnSync(cleanArgv[0]!, cleanArgv.slice(1), { stdio: "ignore" }).status === 0;
      return { argv, cleanArgv: ok ? cleanArgv : undefined, stop };
    }
  }
  stop();
  return `ssh localhost true did not succeed within 5 s: ${err.trim()}`;
}

async function main(): Promise<void> {
  console.log("run-true: rnx run true (whole CLI) vs bare runc run of the same spec vs ssh localhost true");
  console.log(hostLine());
  const d = await TestDaemon.start({ logging: { level: "info" } });
  const bundle = await bundleFromDaemon(d);
  const ssh = await startSshd();
  try {
    const dir = writeRunBundle(bundle, "bench-true", ["true"]);
    const runc = ["runc", "--root", bundle.stateRoot, "run", "-b", dir, "bench-true"];
    const rnx = [process.execPath, RNX, "--config", d.rnxConfigFile, "run", "true"];
    const sshCmds = typeof ssh === "string" ? [] : [ssh.argv, ...(ssh.cleanArgv ? [ssh.cleanArgv] : [])];
    // BENCH_RNX_OTHER=PATH/bin/rnx: another build's `rnx run true` on the same daemon, in the same invocation.
    const other = process.env.BENCH_RNX_OTHER;
    const otherCmds = other ? [[process.execPath, other, "--config", d.rnxConfigFile, "run", "true"]] : [];
    const [tRnx, tOther, tRunc, tSsh, tClean] = await medians([rnx, ...otherCmds, runc, ...sshCmds], RUNS).then((t) => (other ? t : [t[0], undefined, ...t.slice(1)]));
    console.log(hostLine());
    console.log("results (medians):");
    row("bare runc run (same spec)", ms(tRunc!));
    if (tSsh !== undefined) row("ssh root@localhost true (root's shell rc)", ms(tSsh));
    else console.log(`  ssh baseline skipped: ${ssh as string}`);
    if (tClean !== undefined) row("ssh user@localhost true (/bin/sh, no rc)", ms(tClean));
    else if (tSsh !== undefined) console.log("  clean-shell ssh baseline skipped: useradd or its login failed");
    row("rnx run true", ms(tRnx!), `+${(tRnx! - tRunc!).toFixed(1)} ms over runc, ${(tRnx! / tRunc!).toFixed(2)}× runc`);
    if (tOther !== undefined) row("other build: rnx run true", ms(tOther), other);
    if (tSsh !== undefined) row("rnx run true / ssh as root", `${(tRnx! / tSsh).toFixed(2)}×`, "(target ≤ 0.5×)");
    if (tClean !== undefined) row("rnx run true / ssh, no shell rc", `${(tRnx! / tClean).toFixed(2)}×`, "(target ≤ 0.5×)");
  } finally {
    if (typeof ssh !== "string") ssh.stop();
    bundle.destroy();
    await d.destroy();
  }
}

await main();
