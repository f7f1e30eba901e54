// The `joblet` program: `joblet [--config FILE]` runs the daemon in the foreground; `joblet init` writes a
// CA, certificates and configs for a new installation.
import { Command, InvalidArgumentError } from "commander";
import { readFileSync } from "node:fs";
import { JobletError } from "../shared/errors.js";
import { daemonConfigSearchPath, loadDaemonConfig } from "../shared/config/daemon.js";

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

function fail(err: unknown): never {
  if (err instanceof JobletError) {
    process.stderr.write(`joblet: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ""}`);
    process.exit(err.code === "INVALID_ARGUMENT" || err.code === "NOT_FOUND" ? 2 : 1);
  }
  process.stderr.write(`joblet: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}

const program = new Command("joblet")
  .description("Joblet daemon: runs isolated, resource-limited jobs and serves them over mutual-TLS gRPC")
  .version(version)
  .option("-c, --config <file>", `daemon config file (default: first of ${daemonConfigSearchPath().join(", ")})`)
  .action(async (opts: { config?: string }) => {
    const config = loadDaemonConfig(opts.config);
    const { createLogger } = await import("./logger.js");
    const { startDaemon } = await import("./daemon.js");
    const log = createLogger(config.logging.level, config.logging.format);
    // A bug in one call must not take the daemon (and every follower) down: log it with its stack and go on.
    process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (a bug)"));
    const daemon = await startDaemon(config, log);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down; jobs keep running");
      void daemon.close().then(() => {
        log.flush();
        process.exit(0);
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });

program
  .command("init")
  .description("generate a CA, server and client certificates, joblet-config.yml and rnx-config.yml")
  .requiredOption("--dir <dir>", "directory to write the configs into (created 0700)")
  .option("--address <host>", "address clients use to reach this server (also a SAN of its certificate)", "localhost")
  .option("--port <n>", "port the daemon listens on", (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new InvalidArgumentError(`expected a port from 1 to 65535, got "${v}"`);
    return n;
  }, 50051)
  .option("--names <a,b>", "extra DNS names or IPs for the server certificate, comma-separated", "")
  .option("--force", "overwrite existing configs (issues a new CA: old client certificates stop working)", false)
  .option("--state-dir <dir>", "the daemon's state dir, an absolute path (default: DIR/state)")
  .option("--run-dir <dir>", "where the daemon keeps jobs' runtime state (bundles, runc's state), an absolute path, best on a tmpfs such as /run/joblet; one daemon per dir (default: in the state dir)")
  .action(async (opts: { dir: string; address: string; port: number; names: string; force: boolean; stateDir?: string; runDir?: string }) => {
    const { runInit } = await import("./init/init.js");
    const names = opts.names.split(",").map((s) => s.trim()).filter(Boolean);
    const res = await runInit({
      dir: opts.dir,
      address: opts.address,
      port: opts.port,
      names,
      force: opts.force,
      ...(opts.stateDir !== undefined && { stateDir: opts.stateDir }),
      ...(opts.runDir !== undefined && { runDir: opts.runDir }),
    });
    process.stdout.write(
      `wrote ${res.daemonConfigFile} (daemon config, keep it private)\n` +
        `wrote ${res.rnxConfigFile} (client config: nodes "default" = admin, "viewer" = read-only)\n` +
        `server certificate valid until ${res.serverCert.notAfter.toISOString()} for ${res.serverCert.sans.join(", ")}\n` +
        `start the daemon: joblet --config ${res.daemonConfigFile}\n`,
    );
  });

program
  .command("doctor")
  .description("check that this host can run jobs with every limit enforced, and that the config is usable; exit 0 when it can")
  .option("-c, --config <file>", `daemon config file (default: first of ${daemonConfigSearchPath().join(", ")})`)
  .option("--json", "print the report as JSON: {configFile, ok, checks: [{id, title, status, found, hint}], durationMs}", false)
  .action(async (opts: { config?: string; json: boolean }, cmd: Command) => {
    const { runDoctor } = await import("./doctor/doctor.js");
    const { formatReport } = await import("./doctor/report.js");
    const report = await runDoctor(opts.config ?? (cmd.parent?.opts() as { config?: string } | undefined)?.config);
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
  });

program.parseAsync(process.argv).catch(fail);
