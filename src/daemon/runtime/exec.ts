// Running helper programs (runc, conmon) and turning their failures into errors that carry the command
// line and its stderr, the way go-runc does, so a failed start says why.
import { execFile } from "node:child_process";
import { JobletError } from "../../shared/errors.js";

/** Output of a finished helper program. */
export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs `file args` to completion; a non-zero exit or spawn failure becomes a JobletError (INTERNAL by default). */
export function run(file: string, args: readonly string[], opts: { timeoutMs?: number; code?: JobletError["code"] } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args as string[],
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const detail = (stderr || err.message).trim();
        reject(new ExecError(file, args, detail, (err as NodeJS.ErrnoException & { code?: unknown }).code, opts.code ?? "INTERNAL"));
      },
    );
  });
}

/** A helper program failed: holds its command line and what it said. */
export class ExecError extends JobletError {
  readonly command: string;
  readonly stderr: string;
  readonly exitCode: unknown;

  constructor(file: string, args: readonly string[], stderr: string, exitCode: unknown, code: JobletError["code"]) {
    super(code, `${file} ${args.join(" ")} failed (exit ${String(exitCode)}): ${stderr}`);
    this.command = [file, ...args].join(" ");
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}
