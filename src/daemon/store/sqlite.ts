// The SQLite job store: one file under the state dir, WAL mode (an autocommit insert costs ~25 µs here and
// survives a process crash; `synchronous=NORMAL` may lose the last commits only on power loss).
import Database from "better-sqlite3";
import { chmodSync } from "node:fs";
import { isFinal, type JobRecord, type JobStatus } from "./record.js";
import type { JobPatch, JobStore } from "./store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  command        TEXT NOT NULL,
  args           TEXT NOT NULL,            -- JSON array of strings
  max_cpu        INTEGER NOT NULL,         -- percent of one CPU
  cpu_cores      TEXT NOT NULL,
  max_memory     INTEGER NOT NULL,         -- MB
  max_iobps      INTEGER NOT NULL,         -- bytes/s
  status         TEXT NOT NULL,
  create_time    TEXT NOT NULL,            -- RFC 3339
  start_time     TEXT,
  end_time       TEXT,
  exit_code      INTEGER,
  signal         TEXT,
  oom_killed     INTEGER NOT NULL DEFAULT 0,
  reason         TEXT,
  stop_requested INTEGER NOT NULL DEFAULT 0,
  usage          TEXT,                     -- JSON JobUsage
  timeout_ms     INTEGER NOT NULL DEFAULT 0,
  timed_out      INTEGER NOT NULL DEFAULT 0,
  workdir        TEXT NOT NULL DEFAULT '',
  network        TEXT NOT NULL DEFAULT 'host',
  upload         TEXT                      -- JSON JobUpload
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs(status) WHERE status IN ('INITIALIZING', 'RUNNING');
-- Retention runs after job ends: by age it reads only the jobs that ended before the limit, by count only the
-- oldest ends (the rowid, seq, is the index's second key). Without it both sorted every finished job each
-- time: 8 ms per job end with 10,000 kept.
CREATE INDEX IF NOT EXISTS jobs_end_time ON jobs(end_time);
`;

/** Columns added after the first release of the schema, with their declarations. */
const ADDED_COLUMNS: readonly [string, string][] = [
  ["timeout_ms", "INTEGER NOT NULL DEFAULT 0"],
  ["timed_out", "INTEGER NOT NULL DEFAULT 0"],
  ["workdir", "TEXT NOT NULL DEFAULT ''"],
  ["network", "TEXT NOT NULL DEFAULT 'host'"],
  ["upload", "TEXT"],
];

interface Row {
  id: string;
  command: string;
  args: string;
  max_cpu: number;
  cpu_cores: string;
  max_memory: number;
  max_iobps: number;
  status: JobStatus;
  create_time: string;
  start_time: string | null;
  end_time: string | null;
  exit_code: number | null;
  signal: string | null;
  oom_killed: number;
  reason: string | null;
  stop_requested: number;
  usage: string | null;
  timeout_ms: number;
  timed_out: number;
  workdir: string;
  network: "host" | "none";
  upload: string | null;
}

const UNFINISHED = "status IN ('INITIALIZING', 'RUNNING')";

/** Job records in an SQLite database file (":memory:" for tests). */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;
  private readonly stmts;
  /** UPDATE statements by their SET list: a job's life repeats the same few patches. */
  private readonly updates = new Map<string, Database.Statement>();
  /**
   * Records of finished jobs as list() last read them, by ID, frozen. A finished job's row rarely changes
   * (a note that its output was cut) and every change goes through update() or delete(), which drop it here:
   * list() then reads only the rows it has not got, instead of all of them each time (with 10,000 finished
   * jobs SQLite's JSON plus JSON.parse and fromRow took ~60 ms of each ListJobs on the 2-core VM). At most
   * retention's maxJobs records (default 10,000, ~0.5 KiB each); SQLite stays the only truth.
   */
  private readonly finished = new Map<string, JobRecord>();

  constructor(file: string) {
    this.db = new Database(file);
    // The database holds every job's command line: readable by the daemon only (WAL files inherit this).
    if (file !== ":memory:") chmodSync(file, 0o600);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    this.addMissingColumns();
    this.stmts = {
      insert: this.db.prepare(
        `INSERT INTO jobs (id, command, args, max_cpu, cpu_cores, max_memory, max_iobps, status, create_time, start_time,
           end_time, exit_code, signal, oom_killed, reason, stop_requested, usage, timeout_ms, timed_out, workdir, network, upload)
         VALUES (@id, @command, @args, @max_cpu, @cpu_cores, @max_memory, @max_iobps, @status, @create_time, @start_time,
           @end_time, @exit_code, @signal, @oom_killed, @reason, @stop_requested, @usage, @timeout_ms, @timed_out, @workdir, @network, @upload)`,
      ),
      get: this.db.prepare("SELECT * FROM jobs WHERE id = ?"),
      prefix: this.db.prepare("SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"),
      list: this.db.prepare(`SELECT json_group_array(json_object(${this.columnPairs()})) FROM (SELECT * FROM jobs ORDER BY seq)`).pluck(),
      listIds: this.db.prepare("SELECT json_group_array(id) FROM (SELECT id FROM jobs ORDER BY seq)").pluck(),
      listSome: this.db
        .prepare(`SELECT json_group_array(json_object(${this.columnPairs()})) FROM (SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?)) ORDER BY seq)`)
        .pluck(),
      unfinished: this.db.prepare(`SELECT * FROM jobs WHERE ${UNFINISHED} ORDER BY seq`),
      countUnfinished: this.db.prepare(`SELECT count(*) AS n FROM jobs WHERE ${UNFINISHED}`),
      countAll: this.db.prepare("SELECT count(*) AS n FROM jobs"),
      delete: this.db.prepare("DELETE FROM jobs WHERE id = ?"),
      // The first N to end (a long job that just ended is kept even if many short ones started after it).
      pruneByCount: this.db.prepare(`SELECT id FROM jobs WHERE NOT ${UNFINISHED} ORDER BY end_time, seq LIMIT ?`),
      // `+seq`: sorting the few rows found beats the planner's choice of a scan in seq order.
      pruneByAge: this.db.prepare(`SELECT id FROM jobs WHERE end_time < ? AND NOT ${UNFINISHED} ORDER BY +seq`),
    };
  }

  insert(job: JobRecord): void {
    this.stmts.insert.run(toRow(job));
  }

  get(id: string): JobRecord | undefined {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row && fromRow(row);
  }

  idsWithPrefix(prefix: string, limit: number): string[] {
    // A range scan on the unique index: ids in [prefix, prefix + U+FFFF) share the prefix.
    return (this.stmts.prefix.all(prefix, `${prefix}\uffff`, limit) as { id: string }[]).map((r) => r.id);
  }

  /**
   * Every job, oldest first. SQLite writes all rows as one JSON text and one JSON.parse reads it: better-sqlite3's
   * all() builds each row object through V8's API at ~1 µs per value (22 columns: 170–320 ms for 10,000 jobs on
   * the measuring host, most of a ListJobs), where SQLite's JSON functions plus JSON.parse take 60–150 ms. The
   * rows are the same as all()'s: the columns' text, integers and nulls under the columns' names.
   */
  list(): JobRecord[] {
    const ids = JSON.parse(this.stmts.listIds.get() as string) as string[];
    const missing = ids.filter((id) => !this.finished.has(id));
    const read = new Map<string, JobRecord>();
    if (missing.length > 0) {
      const text = missing.length === ids.length ? this.stmts.list.get() : this.stmts.listSome.get(JSON.stringify(missing));
      for (const row of JSON.parse(text as string) as Row[]) {
        const job = fromRow(row);
        read.set(job.id, job);
        if (isFinal(job.status)) this.finished.set(job.id, freezeRecord(job));
      }
    }
    // Deleted by another way than delete() (none today): forget what is no longer listed.
    if (this.finished.size > ids.length) {
      const listed = new Set(ids);
      for (const id of this.finished.keys()) if (!listed.has(id)) this.finished.delete(id);
    }
    return ids.flatMap((id) => {
      const job = this.finished.get(id) ?? read.get(id);
      return job ? [job] : [];
    });
  }

  listUnfinished(): JobRecord[] {
    return (this.stmts.unfinished.all() as Row[]).map(fromRow);
  }

  countUnfinished(): number {
    return (this.stmts.countUnfinished.get() as { n: number }).n;
  }

  update(id: string, patch: JobPatch): void {
    const cols: string[] = [];
    const values: Record<string, unknown> = { id };
    const set = (col: string, value: unknown) => {
      cols.push(`${col} = @${col}`);
      values[col] = value;
    };
    if (patch.status !== undefined) set("status", patch.status);
    if (patch.startTime !== undefined) set("start_time", patch.startTime);
    if (patch.endTime !== undefined) set("end_time", patch.endTime);
    if (patch.exitCode !== undefined) set("exit_code", patch.exitCode);
    if (patch.signal !== undefined) set("signal", patch.signal);
    if (patch.oomKilled !== undefined) set("oom_killed", patch.oomKilled ? 1 : 0);
    if (patch.reason !== undefined) set("reason", patch.reason);
    if (patch.stopRequested !== undefined) set("stop_requested", patch.stopRequested ? 1 : 0);
    if (patch.usage !== undefined) set("usage", JSON.stringify(patch.usage));
    if (patch.timedOut !== undefined) set("timed_out", patch.timedOut ? 1 : 0);
    if (patch.upload !== undefined) set("upload", JSON.stringify(patch.upload));
    if (cols.length === 0) return;
    this.finished.delete(id);
    const setList = cols.join(", ");
    let stmt = this.updates.get(setList);
    if (!stmt) {
      stmt = this.db.prepare(`UPDATE jobs SET ${setList} WHERE id = @id`);
      this.updates.set(setList, stmt);
    }
    stmt.run(values);
  }

  /** Brings a database made by an older version up to the current columns (all added with defaults). */
  /** `'name', name` for every column of the jobs table: json_object's arguments for a whole row. */
  private columnPairs(): string {
    return (this.db.pragma("table_info(jobs)") as { name: string }[]).map((c) => `'${c.name}', ${c.name}`).join(", ");
  }

  private addMissingColumns(): void {
    const have = new Set((this.db.pragma("table_info(jobs)") as { name: string }[]).map((c) => c.name));
    for (const [name, decl] of ADDED_COLUMNS) {
      if (!have.has(name)) this.db.exec(`ALTER TABLE jobs ADD COLUMN ${name} ${decl}`);
    }
  }

  delete(id: string): boolean {
    this.finished.delete(id);
    return this.stmts.delete.run(id).changes > 0;
  }

  finishedToPrune(keep: number, endedBefore: string | undefined): string[] {
    const finished = (this.stmts.countAll.get() as { n: number }).n - this.countUnfinished();
    const ids = new Set(finished > keep ? (this.stmts.pruneByCount.all(finished - keep) as { id: string }[]).map((r) => r.id) : []);
    if (endedBefore !== undefined) for (const r of this.stmts.pruneByAge.all(endedBefore) as { id: string }[]) ids.add(r.id);
    return [...ids];
  }

  close(): void {
    this.db.close();
  }
}

function toRow(j: JobRecord): Row {
  return {
    id: j.id,
    command: j.command,
    args: JSON.stringify(j.args),
    max_cpu: j.limits.maxCpuPercent,
    cpu_cores: j.limits.cpuCores,
    max_memory: j.limits.maxMemoryMB,
    max_iobps: j.limits.maxIoBps,
    status: j.status,
    create_time: j.createTime,
    start_time: j.startTime ?? null,
    end_time: j.endTime ?? null,
    exit_code: j.exitCode ?? null,
    signal: j.signal ?? null,
    oom_killed: j.oomKilled ? 1 : 0,
    reason: j.reason ?? null,
    stop_requested: j.stopRequested ? 1 : 0,
    usage: j.usage ? JSON.stringify(j.usage) : null,
    timeout_ms: j.timeoutMs,
    timed_out: j.timedOut ? 1 : 0,
    workdir: j.workdir,
    network: j.network,
    upload: j.upload ? JSON.stringify(j.upload) : null,
  };
}

/** `job` and the objects in it made read-only: list() hands the same record out again and again. */
function freezeRecord(job: JobRecord): JobRecord {
  for (const v of Object.values(job)) if (typeof v === "object" && v !== null) Object.freeze(v);
  return Object.freeze(job);
}

function fromRow(r: Row): JobRecord {
  return {
    id: r.id,
    command: r.command,
    args: JSON.parse(r.args) as string[],
    limits: { maxCpuPercent: r.max_cpu, cpuCores: r.cpu_cores, maxMemoryMB: r.max_memory, maxIoBps: r.max_iobps },
    status: r.status,
    createTime: r.create_time,
    ...(r.start_time !== null && { startTime: r.start_time }),
    ...(r.end_time !== null && { endTime: r.end_time }),
    ...(r.exit_code !== null && { exitCode: r.exit_code }),
    ...(r.signal !== null && { signal: r.signal }),
    oomKilled: r.oom_killed === 1,
    ...(r.reason !== null && { reason: r.reason }),
    stopRequested: r.stop_requested === 1,
    ...(r.usage !== null && { usage: JSON.parse(r.usage) }),
    timeoutMs: r.timeout_ms,
    timedOut: r.timed_out === 1,
    workdir: r.workdir,
    network: r.network,
    ...(r.upload !== null && { upload: JSON.parse(r.upload) }),
  };
}
