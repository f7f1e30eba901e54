// Writes one streamed upload into a job's work dir before the job exists. The security argument, in order of
// strength:
// 1. Every entry path is checked (entry-path.ts): relative, no "", "." or ".." component, so it names a place
//    inside the tree as long as no component is a symlink.
// 2. The writer remembers every path it created and its kind. A path is created only if it is new, and only
//    below prefixes it created as directories itself, so no path it touches goes through a symlink: uploaded
//    symlinks are recorded as such and nothing is ever created below one. This does not trust the disk.
// 3. Defence in depth against anything on disk the writer did not make (which the contract rules out: the dir
//    starts empty and no other process writes to it): files are opened O_CREAT|O_EXCL|O_NOFOLLOW, directories
//    are made with a plain mkdir (EEXIST, never "recursive") and then opened O_DIRECTORY|O_NOFOLLOW to set
//    owner and mode through the fd, symlinks are made with symlink(2) (EEXIST) and owned with lchown. So a
//    planted final component is refused, never followed. A planted symlink replacing a directory this writer
//    already made would still be followed as an intermediate component (Node has no openat): the contract,
//    not this code, excludes that.
// Nothing here follows a symlink on purpose: no chown/chmod/utimes by path, no recursive mkdir, no realpath.
import { constants } from "node:fs";
import { lchown, lstat, mkdir, open, readdir, symlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { JobletError, invalidArgument, isJobletError } from "../../shared/errors.js";
import { checkEntryPath, checkLinkTarget, entryLabel, quoteForMessage } from "./entry-path.js";

/** What an upload entry is. */
export type UploadEntryKind = "file" | "directory" | "symlink";

/** One entry as the client declared it (see UploadEntry in proto/joblet.proto). */
export interface UploadEntryIn {
  /** Relative to the work dir, "/"-separated. */
  path: string;
  kind: UploadEntryKind;
  /** Permission bits; only mode & 0o777 is applied (no setuid, setgid or sticky). Ignored for symlinks. */
  mode: number;
  /** File: exact number of data bytes that follow, which must all arrive. Must be 0 for other kinds. */
  size: number;
  /** Symlink: its target, stored as is. Must be "" for other kinds. */
  linkTarget: string;
}

/** What an upload created: counts include parent directories created implicitly; bytes is the file data. */
export interface UploadTotals {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  /** Top-level names created in the work dir, sorted, at most 100. */
  roots: string[];
}

/** How an UploadWriter checks and owns what it writes. */
export interface UploadWriterOptions {
  /** Host uid/gid that must own everything created (the job's root in its user namespace); undefined = root. */
  owner?: { uid: number; gid: number };
  /** What the client declared in the header and the daemon already checked against its limits. */
  declaredBytes: number;
  declaredEntries: number;
}

/** Mode of parent directories the client did not send (the wire's documented default). */
export const IMPLICIT_DIR_MODE = 0o755;
/** Most top-level names listed in UploadTotals.roots. */
export const MAX_ROOTS = 100;

// O_EXCL with O_CREAT fails with EEXIST on any existing name, a dangling symlink included; O_NOFOLLOW makes the
// refusal of a symlink explicit (ELOOP) should O_EXCL ever be dropped. Node adds O_CLOEXEC itself.
const FILE_OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const DIR_OPEN_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// Files and directories start private to root until their owner and mode are set through the fd.
const CREATE_FILE_MODE = 0o600;
const CREATE_DIR_MODE = 0o700;
const PERMISSION_BITS = 0o777;
const MAX_UINT32 = 0xffff_ffff;

interface Created {
  kind: UploadEntryKind;
  /** The entry that created it (1-based); 0 for a parent directory created implicitly. */
  index: number;
}

interface OpenFile {
  label: string;
  size: number;
  written: number;
  fh: FileHandle;
}

interface LastEntry {
  label: string;
  kind: UploadEntryKind;
  size: number;
}

type State = "writing" | "finished" | "aborted";

/** Writes one upload into an existing, empty directory that no other process writes to. */
export class UploadWriter {
  readonly #rootDir: string;
  readonly #opts: UploadWriterOptions;
  readonly #created = new Map<string, Created>();
  readonly #roots = new Set<string>();
  #state: State = "writing";
  #failure: unknown = undefined;
  #inflight: Promise<unknown> | undefined = undefined;
  #rootChecked = false;
  #entries = 0;
  #declaredSoFarBytes = 0;
  #writtenBytes = 0;
  #files = 0;
  #directories = 0;
  #symlinks = 0;
  #file: OpenFile | undefined = undefined;
  #last: LastEntry | undefined = undefined;

  constructor(rootDir: string, opts: UploadWriterOptions) {
    this.#rootDir = path.resolve(rootDir);
    this.#opts = opts;
  }

  /** Entries begun so far; the next begin() is entry number entriesBegun + 1 in error messages. */
  get entriesBegun(): number {
    return this.#entries;
  }

  /** Starts an entry: validates it, creates the directory or symlink, or opens the file. */
  begin(entry: UploadEntryIn): Promise<void> {
    return this.#run(() => this.#begin(entry));
  }

  /** Appends the next bytes of the current file. */
  write(data: Uint8Array): Promise<void> {
    return this.#run(() => this.#write(data));
  }

  /**
   * Checks the upload is complete (last file got all its bytes) and returns what was written. The entry count
   * and the byte total must equal what the header declared: a short upload is a broken client, refused.
   */
  finish(): Promise<UploadTotals> {
    return this.#run(() => this.#finish());
  }

  /** Closes whatever is open; the caller then removes rootDir. Safe to call more than once / after finish. */
  async abort(): Promise<void> {
    if (this.#state === "writing") this.#state = "aborted";
    // A call in flight (say a write when the stream broke) may still open or close a file: wait for it.
    if (this.#inflight) await this.#inflight.catch(() => undefined);
    await this.#closeFile();
  }

  // One call at a time; the first error sticks: every later call rethrows it, and the open file is closed.
  async #run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state !== "writing") throw new JobletError("FAILED_PRECONDITION", `upload: expected an upload in progress, got one already ${this.#state}`);
    if (this.#inflight) throw new JobletError("INTERNAL", "upload: UploadWriter calls must not overlap (await each one)");
    const p = op();
    this.#inflight = p;
    try {
      return await p;
    } catch (err) {
      this.#failure = err;
      await this.#closeFile();
      throw err;
    } finally {
      this.#inflight = undefined;
    }
  }

  async #begin(entry: UploadEntryIn): Promise<void> {
    await this.#checkRoot();
    const index = ++this.#entries;
    const label = entryLabel(index, entry.path);
    this.#requireFileComplete(`before ${label}`);

    // Everything is checked before anything is created, so a refused entry leaves no trace of itself.
    const pathProblem = checkEntryPath(entry.path);
    if (pathProblem) throw refuse(label, "path", pathProblem);
    const mode = checkFields(entry, label);
    if (index > this.#opts.declaredEntries) {
      throw invalidArgument(`${label}: entry count`, `at most ${this.#opts.declaredEntries} (totalEntries in the header)`, index);
    }
    if (entry.kind === "file") {
      const leftBytes = this.#opts.declaredBytes - this.#declaredSoFarBytes;
      if (entry.size > leftBytes) {
        throw invalidArgument(`${label}: size`, `at most ${leftBytes} bytes (what is left of totalBytes ${this.#opts.declaredBytes} in the header)`, entry.size);
      }
    }
    const missingParents = this.#checkPlace(entry, label);

    for (const parent of missingParents) {
      await this.#makeDirectory(parent, IMPLICIT_DIR_MODE, label);
      this.#created.set(parent, { kind: "directory", index: 0 });
      this.#directories++;
      this.#noteRoot(parent);
    }
    const full = this.#full(entry.path);
    const existing = this.#created.get(entry.path);
    switch (entry.kind) {
      case "directory":
        if (existing) await this.#setDirectoryMode(entry.path, mode, label);
        else {
          await this.#makeDirectory(entry.path, mode, label);
          this.#directories++;
        }
        break;
      case "symlink":
        await fsStep(label, "creating the symlink", () => symlink(entry.linkTarget, full));
        if (this.#opts.owner) {
          const { uid, gid } = this.#opts.owner;
          await fsStep(label, "setting the symlink's owner", () => lchown(full, uid, gid));
        }
        this.#symlinks++;
        break;
      case "file":
        await this.#openFile(entry, mode, label);
        this.#files++;
        break;
    }
    this.#created.set(entry.path, { kind: entry.kind, index });
    this.#noteRoot(entry.path);
    this.#last = { label, kind: entry.kind, size: entry.size };
  }

  // Refuses a path that exists already or lies below a file or symlink; returns the missing parents, top first.
  #checkPlace(entry: UploadEntryIn, label: string): string[] {
    const components = entry.path.split("/");
    const missing: string[] = [];
    let prefix = "";
    for (let i = 0; i < components.length - 1; i++) {
      prefix = prefix === "" ? components[i]! : `${prefix}/${components[i]}`;
      const c = this.#created.get(prefix);
      if (c === undefined) missing.push(prefix);
      else if (c.kind === "symlink") {
        throw refuse(label, "path", `expected no symlink among its parents (the daemon never writes through a symlink), got ${quoteForMessage(prefix)}, a symlink (entry ${c.index})`);
      } else if (c.kind === "file") {
        throw refuse(label, "path", `expected its parent ${quoteForMessage(prefix)} to be a directory, got a file (entry ${c.index})`);
      }
    }
    const existing = this.#created.get(entry.path);
    // A parent created implicitly may be sent later as a directory entry of its own: that only sets its mode.
    if (existing && !(existing.kind === "directory" && existing.index === 0 && entry.kind === "directory")) {
      const what = existing.index === 0 ? "a directory created as a parent" : `entry ${existing.index}, a ${existing.kind}`;
      throw refuse(label, "path", `a path not already in the upload, got the path of ${what}`);
    }
    return missing;
  }

  async #openFile(entry: UploadEntryIn, mode: number, label: string): Promise<void> {
    const fh = await fsStep(label, "creating the file", () => open(this.#full(entry.path), FILE_OPEN_FLAGS, CREATE_FILE_MODE));
    const file: OpenFile = { label, size: entry.size, written: 0, fh };
    this.#file = file;
    this.#declaredSoFarBytes += entry.size;
    // Owner first: chown(2) may clear permission bits; the mode is set explicitly because open() applies umask.
    if (this.#opts.owner) {
      const { uid, gid } = this.#opts.owner;
      await fsStep(label, "setting the file's owner", () => fh.chown(uid, gid));
    }
    await fsStep(label, "setting the file's mode", () => fh.chmod(mode));
    if (entry.size === 0) await this.#closeFile(label);
  }

  // mkdir never follows a final symlink (EEXIST); owner and mode are then set through an O_NOFOLLOW fd.
  async #makeDirectory(rel: string, mode: number, label: string): Promise<void> {
    await fsStep(label, `creating the directory ${quoteForMessage(rel)}`, () => mkdir(this.#full(rel), CREATE_DIR_MODE));
    await this.#withDirectory(rel, label, async (fh) => {
      if (this.#opts.owner) {
        const { uid, gid } = this.#opts.owner;
        await fsStep(label, "setting the directory's owner", () => fh.chown(uid, gid));
      }
      await fsStep(label, "setting the directory's mode", () => fh.chmod(mode));
    });
  }

  async #setDirectoryMode(rel: string, mode: number, label: string): Promise<void> {
    await this.#withDirectory(rel, label, (fh) => fsStep(label, "setting the directory's mode", () => fh.chmod(mode)));
  }

  async #withDirectory(rel: string, label: string, use: (fh: FileHandle) => Promise<void>): Promise<void> {
    const fh = await fsStep(label, `opening the directory ${quoteForMessage(rel)}`, () => open(this.#full(rel), DIR_OPEN_FLAGS));
    try {
      await use(fh);
    } finally {
      await fh.close();
    }
  }

  async #write(data: Uint8Array): Promise<void> {
    const f = this.#file;
    if (f === undefined) throw this.#dataWithoutFile(data.length);
    if (f.written + data.length > f.size) {
      throw refuse(f.label, "data", `${f.size} bytes (its size), got ${f.written + data.length} or more`);
    }
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await fsStep(f.label, "writing", () => f.fh.write(data, offset, data.length - offset));
      // write(2) on a regular file returns fewer bytes only on a full disk or a signal; 0 would loop forever.
      if (bytesWritten <= 0) throw new JobletError("INTERNAL", `${f.label}: writing: the kernel accepted 0 of ${data.length - offset} bytes`);
      offset += bytesWritten;
    }
    f.written += data.length;
    this.#writtenBytes += data.length;
    if (f.written === f.size) await this.#closeFile(f.label);
  }

  #dataWithoutFile(length: number): JobletError {
    const last = this.#last;
    if (last === undefined) return invalidArgument("upload data", "an entry before any data", `${length} bytes before the first entry`);
    if (last.kind === "file") return refuse(last.label, "data", `${last.size} bytes (its size), got more`);
    return refuse(last.label, "data", `no data after a ${last.kind} entry, got ${length} bytes`);
  }

  async #finish(): Promise<UploadTotals> {
    await this.#checkRoot();
    this.#requireFileComplete("before the end of the upload");
    if (this.#entries !== this.#opts.declaredEntries) {
      throw invalidArgument("upload: entry count", `${this.#opts.declaredEntries} (totalEntries in the header)`, this.#entries);
    }
    if (this.#writtenBytes !== this.#opts.declaredBytes) {
      throw invalidArgument("upload: file bytes", `${this.#opts.declaredBytes} (totalBytes in the header)`, this.#writtenBytes);
    }
    this.#state = "finished";
    return {
      files: this.#files,
      directories: this.#directories,
      symlinks: this.#symlinks,
      bytes: this.#writtenBytes,
      roots: [...this.#roots].sort().slice(0, MAX_ROOTS),
    };
  }

  #requireFileComplete(when: string): void {
    const f = this.#file;
    if (f !== undefined) throw refuse(f.label, "data", `${f.size} bytes (its size), got ${f.written} of ${f.size} bytes ${when}`);
  }

  // The contract says rootDir exists and is empty; checked once, since everything above relies on it.
  async #checkRoot(): Promise<void> {
    if (this.#rootChecked) return;
    const where = `upload: work directory ${quoteForMessage(this.#rootDir)}`;
    const st = await fsStep(where, "checking", () => lstat(this.#rootDir));
    if (!st.isDirectory()) throw new JobletError("FAILED_PRECONDITION", `${where}: expected a directory, got ${st.isSymbolicLink() ? "a symlink" : "something else"}`);
    const names = await fsStep(where, "listing", () => readdir(this.#rootDir));
    if (names.length > 0) throw new JobletError("FAILED_PRECONDITION", `${where}: expected an empty directory, got ${names.length} entries (first ${quoteForMessage(names[0]!)})`);
    this.#rootChecked = true;
  }

  async #closeFile(label?: string): Promise<void> {
    const f = this.#file;
    if (f === undefined) return;
    this.#file = undefined;
    if (label === undefined) await f.fh.close().catch(() => undefined);
    else await fsStep(label, "closing", () => f.fh.close());
  }

  #noteRoot(rel: string): void {
    const slash = rel.indexOf("/");
    this.#roots.add(slash < 0 ? rel : rel.slice(0, slash));
  }

  // Entry paths are checked, so plain concatenation is exact (path.join would normalise).
  #full(rel: string): string {
    return `${this.#rootDir}/${rel}`;
  }
}

// Checks the fields that depend on the kind; returns the mode to apply.
function checkFields(entry: UploadEntryIn, label: string): number {
  if (entry.kind !== "file" && entry.kind !== "directory" && entry.kind !== "symlink") {
    throw refuse(label, "kind", `"file", "directory" or "symlink", got ${quoteForMessage(String(entry.kind))}`);
  }
  if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > MAX_UINT32) {
    throw invalidArgument(`${label}: mode`, "permission bits (an unsigned 32-bit integer, of which only & 0o777 is kept)", entry.mode);
  }
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw invalidArgument(`${label}: size`, "a byte count (a non-negative integer)", entry.size);
  if (entry.kind !== "file" && entry.size !== 0) throw invalidArgument(`${label}: size`, `0 for a ${entry.kind} (only files carry data)`, entry.size);
  if (entry.kind === "symlink") {
    const problem = checkLinkTarget(entry.linkTarget);
    if (problem) throw refuse(label, "linkTarget", problem);
  } else if (entry.linkTarget !== "") {
    throw refuse(label, "linkTarget", `"" for a ${entry.kind} (only symlinks have a target), got ${quoteForMessage(String(entry.linkTarget))}`);
  }
  return entry.mode & PERMISSION_BITS;
}

// `label: field: expected …, got …`; `problem` is either the whole "expected …, got …" or just what follows "expected".
function refuse(label: string, field: string, problem: string): JobletError {
  const text = problem.startsWith("expected ") ? problem : `expected ${problem}`;
  return new JobletError("INVALID_ARGUMENT", `${label}: ${field}: ${text}`);
}

const FULL_DISK = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);
// The writer checked the name is new and its parents are its own directories: one of these means something it
// did not create is on disk, which the caller's contract (empty dir, sole writer) rules out.
const NOT_OURS = new Set(["EEXIST", "ELOOP", "ENOTDIR", "EISDIR"]);

// Runs one filesystem call, turning its failure into a JobletError that names the entry and the step.
async function fsStep<T>(label: string, action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isJobletError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "unknown";
    const reason = err instanceof Error ? err.message : String(err);
    if (FULL_DISK.has(code)) {
      throw new JobletError("RESOURCE_EXHAUSTED", `${label}: ${action}: no space left for the upload (${code})`, {
        hint: "the work dir's filesystem is full or its size limit (filesystem.workSizeMB) is reached; upload less",
        cause: err,
      });
    }
    if (code === "ENAMETOOLONG") {
      throw new JobletError("INVALID_ARGUMENT", `${label}: path: expected a path short enough to fit under the work dir, got ENAMETOOLONG while ${action}`, { cause: err });
    }
    if (NOT_OURS.has(code)) {
      throw new JobletError("FAILED_PRECONDITION", `${label}: ${action}: expected nothing on disk that this upload did not create, got ${code}`, { cause: err });
    }
    throw new JobletError("INTERNAL", `${label}: ${action}: ${reason}`, { cause: err });
  }
}
