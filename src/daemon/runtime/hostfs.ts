// The parts of the host a job sees, prepared once per daemon start under the state dir and shared by all
// jobs: an empty read-only root filesystem with mount points and the host's top-level links into /usr, and a
// minimal /etc. The host's own /etc is never exposed: /etc/shadow, the daemon's config and private keys stay
// out of reach.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

/** What a job's spec needs from the host layout. */
export interface HostFs {
  rootfsDir: string;
  etcDir: string;
  /** Top-level dirs (like /lib64 on some hosts) that are real directories, to be bound read-only. */
  extraRoBinds: string[];
}

// Top-level entries that on merged-/usr hosts are links into /usr and elsewhere real directories.
const LIB_DIRS = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
const MOUNT_POINTS = ["usr", "etc", "work", "tmp", "proc", "dev", "sys"];
// Mode of the job's /tmp: sticky and world-writable, as on any host.
const TMP_MODE = 0o1777;

const PASSWD = "root:x:0:0:root:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";
const HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
const NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n";
// Public, secret-free host files copied as they are (when present).
const COPIED = ["resolv.conf", "ld.so.cache", "services", "protocols", "mime.types"];

/** Builds (or refreshes) the shared rootfs and /etc under `stateDir`; `hostRoot` is "/" except in tests. */
export function prepareHostFs(stateDir: string, hostRoot = "/"): HostFs {
  const rootfsDir = path.join(stateDir, "rootfs");
  const etcDir = path.join(stateDir, "etc");
  mkdirSync(rootfsDir, { recursive: true, mode: 0o755 });
  const extraRoBinds: string[] = [];
  for (const dir of MOUNT_POINTS) mkdirSync(path.join(rootfsDir, dir), { recursive: true, mode: 0o755 });
  // runc gives a tmpfs the mode of the directory it is mounted on, overriding the spec's `mode=1777`: the
  // mount point itself must be world-writable and sticky, or only root could write the job's /tmp.
  // chmod, not mkdir's mode: that one is masked by the umask, cannot set the sticky bit, and skips old dirs.
  chmodSync(path.join(rootfsDir, "tmp"), TMP_MODE);
  for (const name of LIB_DIRS) {
    const host = path.join(hostRoot, name);
    const inRootfs = path.join(rootfsDir, name);
    if (!existsSync(host)) continue;
    if (lstatSync(host).isSymbolicLink()) {
      replaceSymlink(readlinkSync(host), inRootfs);
    } else {
      mkdirSync(inRootfs, { recursive: true, mode: 0o755 });
      extraRoBinds.push(`/${name}`);
    }
  }
  buildEtc(etcDir, path.join(hostRoot, "etc"));
  return { rootfsDir, etcDir, extraRoBinds };
}

function buildEtc(etcDir: string, hostEtc: string): void {
  mkdirSync(path.join(etcDir, "ssl", "certs"), { recursive: true, mode: 0o755 });
  writeAtomic(path.join(etcDir, "passwd"), PASSWD);
  writeAtomic(path.join(etcDir, "group"), GROUP);
  writeAtomic(path.join(etcDir, "hosts"), HOSTS);
  writeAtomic(path.join(etcDir, "nsswitch.conf"), NSSWITCH);
  for (const name of COPIED) {
    const src = path.join(hostEtc, name);
    if (existsSync(src)) writeAtomic(path.join(etcDir, name), readFileSync(src));
  }
  // The CA bundle, so TLS clients in a job can verify servers; OpenSSL also looks for ssl/cert.pem.
  const bundle = path.join(hostEtc, "ssl", "certs", "ca-certificates.crt");
  if (existsSync(bundle)) {
    const tmp = path.join(etcDir, "ssl", "certs", ".ca-certificates.crt.tmp");
    copyFileSync(bundle, tmp);
    renameSync(tmp, path.join(etcDir, "ssl", "certs", "ca-certificates.crt"));
    replaceSymlink("certs/ca-certificates.crt", path.join(etcDir, "ssl", "cert.pem"));
  }
  // Links whose targets live in /usr: the time zone, os-release, and Debian's alternatives (/usr/bin/awk →
  // /etc/alternatives/awk → /usr/bin/mawk), without which many commands would not resolve.
  for (const name of ["localtime", "os-release"]) {
    const src = path.join(hostEtc, name);
    if (existsSync(src) && lstatSync(src).isSymbolicLink()) replaceSymlink(readlinkSync(src), path.join(etcDir, name));
  }
  const alternatives = path.join(hostEtc, "alternatives");
  if (existsSync(alternatives)) {
    const dst = path.join(etcDir, "alternatives");
    mkdirSync(dst, { recursive: true, mode: 0o755 });
    for (const name of readdirSync(alternatives)) {
      const src = path.join(alternatives, name);
      if (lstatSync(src).isSymbolicLink()) replaceSymlink(readlinkSync(src), path.join(dst, name));
    }
  }
}

/** Writes a file by rename, so a job reading it never sees it half-written. */
function writeAtomic(file: string, content: string | Buffer): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, file);
}

function replaceSymlink(target: string, linkPath: string): void {
  try {
    if (readlinkSync(linkPath) === target) return;
  } catch {
    // missing or not a link
  }
  rmSync(linkPath, { force: true, recursive: true });
  symlinkSync(target, linkPath);
}
