// Turns zod validation issues into one JobletError whose message names each bad key, what was expected and
// what was given, so a config mistake is fixed in one round.
import type { z } from "zod";
import { JobletError, describeValue } from "../errors.js";

/** Formats zod issues as `file: key: expected …, got …` lines under one INVALID_ARGUMENT error. */
export function configError(file: string, issues: readonly z.core.$ZodIssue[]): JobletError {
  const lines = issues.map((issue) => {
    const key = issue.path.length ? issue.path.join(".") : "(top level)";
    const given = "input" in issue ? `, got ${describeValue(issue.input)}` : "";
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys.map((k) => (issue.path.length ? `${key}.${k}` : k));
      return `${keys.join(", ")}: unknown key (not a Joblet setting; remove it or check its spelling)`;
    }
    return `${key}: ${issue.message}${given}`;
  });
  return new JobletError("INVALID_ARGUMENT", `invalid config ${file}:\n  ${lines.join("\n  ")}`);
}
