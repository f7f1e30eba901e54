// `joblet init`: creates a fresh PKI and writes the two config files a new installation needs: the daemon's
// joblet-config.yml (server certificate, key and CA embedded) and the CLI's rnx-config.yml (admin and viewer
// client credentials). The CA's private key is written nowhere: issuing new certificates means running init
// again with --force, which replaces the CA and so retires every certificate issued before.
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { type CertificateInfo, type Pki, checkHost, checkPort, describeCertificate, generatePki } from "../../shared/tls/certs.js";

/** What `joblet init` takes; each field mirrors its command-line flag. */
export interface InitOptions {
  /**
   * Directory to write the config files into (`--dir`); created 0711 if missing: others may pass through
   * it (jobs' mapped root must reach the state dir inside it) but not list it; the files are 0600.
   */
  readonly dir: string;
  /** Host name or IP literal clients will dial (`--address`); goes into the server certificate and rnx-config.yml. */
  readonly address?: string;
  /** TCP port the daemon listens on (`--port`). */
  readonly port?: number;
  /** Further host names or IP literals the server certificate must be valid for (`--names`). */
  readonly names?: readonly string[];
  /** Overwrite existing config files (`--force`). */
  readonly force?: boolean;
  /** The daemon's state dir written into joblet-config.yml (`--state-dir`, absolute); defaults to DIR/state. */
  readonly stateDir?: string;
  /** The daemon's run dir written into joblet-config.yml (`--run-dir`, absolute); unset = runtime state in the state dir. */
  readonly runDir?: string;
  /** Issuing time of the certificates; defaults to now. */
  readonly now?: Date;
}

/** What `runInit` wrote. */
export interface InitResult {
  /** Absolute path of the daemon's config. */
  readonly daemonConfigFile: string;
  /** Absolute path of the CLI's config. */
  readonly rnxConfigFile: string;
  /** The server certificate that was written, for printing its SANs and expiry. */
  readonly serverCert: CertificateInfo;
}

/** File names inside the init directory. */
export const DAEMON_CONFIG_NAME = "joblet-config.yml";
export const RNX_CONFIG_NAME = "rnx-config.yml";

/** Generates a PKI and writes DIR/joblet-config.yml and DIR/rnx-config.yml (mode 0600, atomically). */
export async function runInit(opts: InitOptions): Promise<InitResult> {
  const { address = "localhost", port = 50051, names = [], force = false } = opts;
  if (typeof opts.dir !== "string" || opts.dir.trim() === "") throw invalidArgument("--dir", "a directory path", opts.dir);
  checkPort(port, "--port");
  const host = checkHost("--address", address);
  if (!Array.isArray(names)) throw invalidArgument("--names", "a list of host names or IP addresses", names);
  for (const name of names) checkHost("--names", name);
  for (const [flag, value] of [["--state-dir", opts.stateDir], ["--run-dir", opts.runDir]] as const) {
    if (value !== undefined && (typeof value !== "string" || !path.isAbsolute(value))) throw invalidArgument(flag, "an absolute directory path", value);
  }

  const dir = path.resolve(opts.dir);
  const daemonConfigFile = path.join(dir, DAEMON_CONFIG_NAME);
  const rnxConfigFile = path.join(dir, RNX_CONFIG_NAME);
  // Both are checked before either is written, so a refusal leaves the directory as it was.
  if (!force) {
    for (const file of [daemonConfigFile, rnxConfigFile]) {
      if (existsSync(file)) {
        throw new JobletError("ALREADY_EXISTS", `${file} already exists; not overwriting it without --force`, {
          hint: "pass --force to replace it with a new CA and new certificates (every existing client certificate stops working)",
        });
      }
    }
  }

  const pki = await generatePki({ address: host, port, names, now: opts.now });
  try {
    // 0711 only applies when the directory is created; an existing one keeps its mode (the files are 0600).
    mkdirSync(dir, { recursive: true, mode: 0o711 });
  } catch (err) {
    throw new JobletError("FAILED_PRECONDITION", `--dir: could not create directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  writeFileAtomic(daemonConfigFile, daemonConfigYaml(pki, port, dir, opts.stateDir ?? path.join(dir, "state"), opts.runDir));
  writeFileAtomic(rnxConfigFile, rnxConfigYaml(pki, dialAddress(host, port)));
  return { daemonConfigFile, rnxConfigFile, serverCert: describeCertificate(pki.serverCertPem) };
}

/** "host:port", with an IPv6 literal in brackets as rnx-config.yml expects. */
function dialAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The daemon config with every section written out at its default and commented, so the file documents itself. */
function daemonConfigYaml(pki: Pki, port: number, dir: string, stateDir: string, runDir: string | undefined): string {
  return `# Joblet daemon configuration, written by \`joblet init\`. Start the daemon with
#   joblet --config ${yamlComment(path.join(dir, DAEMON_CONFIG_NAME))}
# This file holds the server's private key: keep it mode 0600, readable by root only.
# The CA's private key was not kept. To issue new certificates, run \`joblet init --force\` again: that makes a
# new CA, so hand out the new rnx-config.yml too (old client certificates stop working).
version: "3.0"

server:
  # Address to listen on; 0.0.0.0 means every IPv4 interface.
  address: "0.0.0.0"
  # TCP port to listen on.
  port: ${port}
  # Lowest TLS version accepted; only "1.3" is supported.
  minTlsVersion: "1.3"

security:
  # Server certificate (PEM) presented to clients; valid for 1 year from \`joblet init\`.
  serverCert: ${blockScalar(pki.serverCertPem, "    ")}
  # Private key of the server certificate (PKCS#8 PEM).
  serverKey: ${blockScalar(pki.serverKeyPem, "    ")}
  # CA certificate (PEM) that client certificates must be issued by; its OU field grants the role.
  caCert: ${blockScalar(pki.caCertPem, "    ")}

joblet:
  # Default CPU limit of a job in percent of one core (100 = one core, 250 = two and a half); 0 = unlimited.
  defaultCpuLimit: 0
  # Default memory limit of a job in MB; 0 = unlimited.
  defaultMemoryLimit: 0
  # Default block-IO limit of a job in bytes per second; 0 = unlimited.
  defaultIoLimit: 0
  # Most jobs running at once.
  maxConcurrentJobs: 100
  # Time between SIGTERM and SIGKILL when a job is stopped ("500ms", "5s", "2m").
  stopGracePeriod: "5s"
  # Most processes (and threads) one job may have at once.
  pidsLimit: 1024
  # Network of a job: "host" shares the host's network; "none" gives it a network namespace with only loopback.
  network: "host"

cgroup:
  # Parent cgroup of every job's cgroup, under /sys/fs/cgroup (on cgroup v1, the same path in each controller).
  baseDir: "/sys/fs/cgroup/joblet"

filesystem:
  # Directory holding each job's writable work dir; when unset, <state.dir>/jobs.
  # baseDir: "/var/lib/joblet/jobs"
  # Size of each job's /tmp (a tmpfs) in MB.
  tmpSizeMB: 64
  # Size of each job's /work in MB: 0 = no cap; otherwise /work is an ext4 volume of its own (needs mkfs.ext4).
  workSizeMB: 0

uploads:
  # Most bytes of files one job may upload into /work (rnx run --upload), in MB; 0 = uploads refused.
  maxTotalMB: 1024
  # Most files, directories and symlinks one job may upload.
  maxEntries: 100000

state:
  # Directory for the daemon's job database, job logs and runtime files (absolute path).
  dir: ${JSON.stringify(path.resolve(stateDir))}
  # Where jobs' runtime state goes instead (OCI bundles, runc's state, conmon's sockets): files that die with
  # the host anyway, a dozen made and removed per job, so best on a tmpfs such as /run/joblet. Exit codes,
  # logs and the database stay in dir. One daemon per run dir; unset = inside dir.
${runDir === undefined ? "  # runDir: /run/joblet" : `  runDir: ${JSON.stringify(path.resolve(runDir))}`}

runtime:
  # OCI runtime binary: a name looked up on PATH, or an absolute path (runc or crun).
  path: "runc"
  # conmon binary that supervises each job so jobs survive a daemon restart: a name on PATH or an absolute path.
  conmonPath: "conmon"

grpc:
  # Largest gRPC message the daemon accepts, in bytes (4194304 = 4 MiB).
  maxRecvMsgSize: 4194304
  # Largest gRPC message the daemon sends, in bytes.
  maxSendMsgSize: 4194304

logging:
  # Least severe level logged: trace, debug, info, warn, error or fatal.
  level: "info"
  # "json" (one object per line) or "text".
  format: "json"
`;
}

/** The CLI config: the admin credentials as node "default", the viewer credentials as node "viewer". */
function rnxConfigYaml(pki: Pki, address: string): string {
  const node = (name: string, comment: string, certPem: string, keyPem: string) => `  # ${comment}
  ${name}:
    # Where the daemon listens, as "host:port".
    address: ${JSON.stringify(address)}
    # Client certificate (PEM); its OU grants the role. Valid for 1 year from \`joblet init\`.
    cert: ${blockScalar(certPem, "      ")}
    # Private key of the client certificate (PKCS#8 PEM).
    key: ${blockScalar(keyPem, "      ")}
    # CA certificate (PEM) the daemon's certificate must be issued by.
    ca: ${blockScalar(pki.caCertPem, "      ")}`;
  return `# rnx configuration, written by \`joblet init\`. Copy it to ~/.rnx/rnx-config.yml (mode 0600) or pass it
# with \`rnx --config FILE\`; pick a node with \`rnx --node NAME\`. It holds client private keys: keep it private.
version: "3.0"

nodes:
${node("default", "Admin role: full access (run, stop and delete jobs as well as read them).", pki.adminCertPem, pki.adminKeyPem)}
${node("viewer", "Viewer role: read-only access (list jobs, status and logs).", pki.viewerCertPem, pki.viewerKeyPem)}
`;
}

/** A PEM as a YAML literal block scalar, each line at `indent`; keeps the single trailing newline. */
function blockScalar(pem: string, indent: string): string {
  return `|\n${pem
    .trimEnd()
    .split("\n")
    .map((line) => `${indent}${line}`)
    .join("\n")}`;
}

/** Text safe inside a YAML comment line. */
function yamlComment(text: string): string {
  return text.replace(/[\r\n]/g, " ");
}

/** Writes `text` to a temp file beside `file` with mode 0600, fsyncs it and renames it over `file`. */
function writeFileAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", 0o600);
    // The umask may have taken bits off the mode at open; set it exactly.
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new JobletError("FAILED_PRECONDITION", `could not write ${file}: ${(err as Error).message}`, { cause: err });
  }
  // The rename is durable only once the directory entry is on disk.
  const dirFd = openSync(path.dirname(file), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
