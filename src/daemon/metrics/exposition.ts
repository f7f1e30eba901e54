// The Prometheus text exposition format, version 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats):
// per family a `# HELP` and a `# TYPE` line, then one `name{label="value"} number` line per sample. Written
// here rather than pulled in as a dependency: the format is small and fixed.

/** The metric types this daemon exports. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One sample line; `suffix` extends the family name (`_bucket`, `_sum`, `_count` of a histogram). */
export interface Sample {
  suffix?: string;
  labels?: Readonly<Record<string, string>>;
  value: number;
}

/** A metric family: its name, help text, type and samples (none is valid: the family is still announced). */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: readonly Sample[];
}

/** The Content-Type of the text format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value inside double quotes: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text: backslash and line feed escaped (double quotes stay as they are). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Prometheus parses it (Go's ParseFloat): `NaN`, `+Inf`, `-Inf` or a decimal number. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Renders families in order; throws on a malformed metric or label name (a bug, not an input error). */
export function renderExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${s.suffix ?? ""}${renderLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

function renderLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return "";
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  for (const [k] of entries) if (!LABEL_NAME.test(k) || k.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(k)}`);
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}
