// Renders a doctor report for people: one line per check with a mark (✓ ok, ! warning, ✗ failure), what
// was found, and under every warning and failure what to do.
import type { CheckStatus } from "./check.js";
import type { DoctorReport } from "./doctor.js";

const MARKS: Record<CheckStatus, string> = { ok: "✓", warn: "!", fail: "✗" };

/** The text report, ending with a one-line verdict. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines = [`joblet doctor: ${report.configFile ?? "no config"}`];
  for (const c of report.checks) {
    lines.push(`${MARKS[c.status]} ${c.title.padEnd(width)}  ${c.found}`);
    if (c.hint && c.status !== "ok") lines.push(`  ${" ".repeat(width)}  → ${c.hint}`);
  }
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const warned = report.checks.filter((c) => c.status === "warn").length;
  const tail = `${report.checks.length} check${report.checks.length === 1 ? "" : "s"}, ${failed} failed, ${warned} warning${warned === 1 ? "" : "s"}, ${(report.durationMs / 1000).toFixed(1)} s`;
  lines.push(
    report.ok
      ? `OK: this host can run jobs with every limit enforced (${tail})`
      : `NOT OK: jobs cannot run here with every limit enforced until the ✗ lines are fixed (${tail})`,
  );
  return `${lines.join("\n")}\n`;
}
