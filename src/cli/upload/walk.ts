// What `rnx run --upload PATH… --upload-dir DIR` will send, listed in full before anything is sent: every
// path in /work, its kind, mode and size, and the totals the upload's header declares. Everything the CLI
// can refuse (a missing path, a FIFO, two sources for one /work path, a file it cannot read) is refused
// here, so a refusal never leaves a half-uploaded job behind.
//
// Symlinks are read with lstat and sent as links: nothing inside a tree is ever followed, so a link to
// /etc/passwd uploads the link, not the file. Only a PATH or DIR named on the command line is resolved
// first (like `cp -H` or `find -H`): `--upload latest` where latest → runs/42 uploads runs/42 as
// /work/latest, because a link named on the command line almost never means "a dangling link in the job".
import { constants, type Stats } from "node:fs";
import { access, lstat, readdir, readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { JobletError, describeValue, invalidArgument } from "../../shared/errors.js";

/** What an entry is on the wire. */
export type UploadItemKind = "file" | "directory" | "symlink";

/** One entry of the upload, in the order it is sent. */
export interface UploadItem {
  /** Path inside /work: relative, "/"-separated, no "." or ".." parts. */
  readonly path: string;
  readonly kind: UploadItemKind;
  /** Permission bits (& 0o777). */
  readonly mode: number;
  /** File size in bytes when listed; 0 for directories and symlinks. */
  readonly sizeBytes: number;
  /** A symlink's target, as readlink(2) returned it; "" otherwise. */
  readonly linkTarget: string;
  /** Where it is on this machine. */
  readonly localPath: string;
  /** How the user would name it (the argument given plus the path below it), for messages. */
  readonly displayPath: string;
}

/** The whole upload, ready to send. */
export interface UploadPlan {
  /** Parents before children; sorted by name at every level, so the order does not depend on the flags' order. */
  readonly items: readonly UploadItem[];
  /** Sum of the files' sizes, bytes. */
  readonly totalBytes: number;
  /** Top-level names created in /work, sorted. */
  readonly roots: readonly string[];
}

/** The upload flags as given. */
export interface UploadSources {
  /** Each `--upload PATH`, in order: PATH becomes /work/<its last part>. */
  readonly paths: readonly string[];
  /** `--upload-dir DIR`: DIR's contents become /work's top level. */
  readonly dir?: string;
}

/**
 * The upload's sources from `rnx run`'s flags as commander collects them; undefined when neither flag was
 * given (then rnx calls plain RunJob, which every server has). --upload-dir may be given once: two
 * directories both becoming /work would be a merge with rules of its own.
 */
export function uploadSourcesFrom(paths: readonly string[] | undefined, dirs: readonly string[] | undefined): UploadSources | undefined {
  if (!paths?.length && !dirs?.length) return undefined;
  if (dirs && dirs.length > 1) {
    throw invalidArgument("--upload-dir", "one directory (its contents become /work)", dirs, "add further files or directories with --upload PATH (each becomes /work/NAME)");
  }
  return { paths: paths ?? [], dir: dirs?.[0] };
}

/** Permission bits sent from Windows, which has no Unix modes. */
export const WINDOWS_FILE_MODE = 0o644;
export const WINDOWS_DIR_MODE = 0o755;
/** A symlink's own mode means nothing on Linux; every link is sent as 0777. */
const SYMLINK_MODE = 0o777;

/** A top-level entry and the flag that produced it. */
interface Root {
  readonly name: string;
  readonly localPath: string;
  readonly displayPath: string;
  readonly flag: "--upload" | "--upload-dir";
  /** e.g. `--upload data` or `--upload-dir project`, for the duplicate message. */
  readonly origin: string;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Lists every entry of the upload and checks it can be sent. `platform` decides the modes (Windows has
 * none: files 0644, directories 0755). Throws INVALID_ARGUMENT naming the flag and the path for anything
 * that cannot be sent.
 */
export async function planUpload(sources: UploadSources, platform: NodeJS.Platform = process.platform): Promise<UploadPlan> {
  const roots = new Map<string, Root>();
  const add = (root: Root) => {
    const other = roots.get(root.name);
    if (other) {
      throw new JobletError(
        "INVALID_ARGUMENT",
        `--upload: ${describeValue(other.displayPath)} (from ${other.origin}) and ${describeValue(root.displayPath)} (from ${root.origin}) would both become /work/${root.name}`,
        { hint: "give each upload its own name in /work: rename one, or upload a directory that holds both" },
      );
    }
    roots.set(root.name, root);
  };
  if (sources.dir !== undefined) {
    const flag = "--upload-dir" as const;
    const real = await resolveArgument(flag, sources.dir);
    const st = await lstatOrThrow(flag, sources.dir, real);
    if (!st.isDirectory()) throw invalidArgument(flag, "a directory (its contents become /work)", sources.dir, "to upload one file use --upload FILE");
    for (const name of await readNames(flag, sources.dir, real)) {
      add({ name, localPath: path.join(real, name), displayPath: path.join(sources.dir, name), flag, origin: `${flag} ${sources.dir}` });
    }
  }
  for (const given of sources.paths) {
    const flag = "--upload" as const;
    const name = path.basename(path.resolve(given));
    if (given === "" || name === "") {
      throw invalidArgument(flag, "a file or directory with a name (it becomes /work/NAME)", given, "to upload a directory's contents use --upload-dir DIR");
    }
    add({ name, localPath: await resolveArgument(flag, given), displayPath: given, flag, origin: `${flag} ${given}` });
  }

  const items: UploadItem[] = [];
  const sorted = [...roots.values()].sort((a, b) => compareNames(a.name, b.name));
  for (const root of sorted) {
    const st = await lstatOrThrow(root.flag, root.displayPath, root.localPath);
    await walk(root.flag, { wirePath: root.name, localPath: root.localPath, displayPath: root.displayPath }, st, platform, items);
  }
  return {
    items,
    totalBytes: items.reduce((sum, item) => sum + item.sizeBytes, 0),
    roots: sorted.map((r) => r.name),
  };
}

/** Where one entry is: in /work, on this machine, and as the user names it. */
interface Place {
  readonly wirePath: string;
  readonly localPath: string;
  readonly displayPath: string;
}

/** Appends `place` and, for a directory, everything below it, parents first. */
async function walk(flag: string, place: Place, st: Stats, platform: NodeJS.Platform, items: UploadItem[]): Promise<void> {
  const windows = platform === "win32";
  const base = { path: place.wirePath, localPath: place.localPath, displayPath: place.displayPath };
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = await readlink(place.localPath);
    } catch (err) {
      throw fsError(flag, "cannot read the symlink", place.displayPath, err);
    }
    items.push({ ...base, kind: "symlink", mode: SYMLINK_MODE, sizeBytes: 0, linkTarget: windows ? target.replace(/\\/g, "/") : target });
    return;
  }
  if (st.isFile()) {
    try {
      await access(place.localPath, constants.R_OK);
    } catch (err) {
      throw fsError(flag, "cannot read the file", place.displayPath, err);
    }
    items.push({ ...base, kind: "file", mode: windows ? WINDOWS_FILE_MODE : st.mode & 0o777, sizeBytes: st.size, linkTarget: "" });
    return;
  }
  if (!st.isDirectory()) {
    throw invalidArgument(flag, "regular files, directories and symlinks only", `${place.displayPath} (${specialKind(st)})`);
  }
  items.push({ ...base, kind: "directory", mode: windows ? WINDOWS_DIR_MODE : st.mode & 0o777, sizeBytes: 0, linkTarget: "" });
  const names = await readNames(flag, place.displayPath, place.localPath);
  const children = names.map((name) => ({
    wirePath: `${place.wirePath}/${name}`,
    localPath: path.join(place.localPath, name),
    displayPath: path.join(place.displayPath, name),
  }));
  // lstat the whole directory at once (libuv's thread pool runs them in parallel); recurse in order.
  const stats = await Promise.all(children.map((child) => lstatOrThrow(flag, child.displayPath, child.localPath)));
  for (let i = 0; i < children.length; i++) await walk(flag, children[i]!, stats[i]!, platform, items);
}

/** A command-line argument resolved through any symlinks (the one place links are followed). */
async function resolveArgument(flag: string, given: string): Promise<string> {
  try {
    return await realpath(given);
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") {
      const target = await readlink(given).catch(() => undefined);
      throw invalidArgument(flag, "an existing file or directory", given, target === undefined ? undefined : `${given} is a symlink to ${describeValue(target)}, which does not exist`);
    }
    throw fsError(flag, "cannot resolve", given, err);
  }
}

/** The names in a directory, sorted; a name that is not valid UTF-8 cannot travel in a proto string. */
async function readNames(flag: string, displayPath: string, localPath: string): Promise<string[]> {
  let raw: Buffer[];
  try {
    raw = await readdir(localPath, { encoding: "buffer" });
  } catch (err) {
    throw fsError(flag, "cannot read the directory", displayPath, err);
  }
  const names = raw.map((bytes) => {
    try {
      return UTF8.decode(bytes);
    } catch {
      throw invalidArgument(flag, "file names in UTF-8 (a path in /work is a proto string)", path.join(displayPath, bytes.toString("latin1")));
    }
  });
  return names.sort(compareNames);
}

async function lstatOrThrow(flag: string, displayPath: string, localPath: string): Promise<Stats> {
  try {
    return await lstat(localPath);
  } catch (err) {
    throw fsError(flag, "cannot read", displayPath, err);
  }
}

/** UTF-16 code-unit order: the same on every machine, whatever the locale (localeCompare is not). */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function specialKind(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isBlockDevice()) return "a block device";
  if (st.isCharacterDevice()) return "a character device";
  return "not a regular file";
}

/** `--upload: cannot read the file "x": permission denied (EACCES)`. */
function fsError(flag: string, what: string, displayPath: string, err: unknown): JobletError {
  const code = errnoCode(err);
  const reason = code === "EACCES" || code === "EPERM" ? "permission denied" : err instanceof Error ? err.message : String(err);
  return new JobletError("INVALID_ARGUMENT", `${flag}: ${what} ${describeValue(displayPath)}: ${reason}${code && !reason.includes(code) ? ` (${code})` : ""}`, {
    cause: err,
  });
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
