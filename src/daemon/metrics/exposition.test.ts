import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeHelp, escapeLabelValue, formatValue, renderExposition } from "./exposition.js";
import { Histogram } from "./histogram.js";

test("a family renders as HELP, TYPE and one line per sample, ending with a newline", () => {
  const text = renderExposition([
    { name: "joblet_jobs", help: "Jobs by state.", type: "gauge", samples: [{ labels: { state: "RUNNING" }, value: 2 }, { labels: { state: "FAILED" }, value: 0 }] },
    { name: "joblet_job_starts_total", help: "Starts.", type: "counter", samples: [{ value: 7 }] },
  ]);
  assert.equal(
    text,
    [
      "# HELP joblet_jobs Jobs by state.",
      "# TYPE joblet_jobs gauge",
      'joblet_jobs{state="RUNNING"} 2',
      'joblet_jobs{state="FAILED"} 0',
      "# HELP joblet_job_starts_total Starts.",
      "# TYPE joblet_job_starts_total counter",
      "joblet_job_starts_total 7",
      "",
    ].join("\n"),
  );
});

test("a family without samples is still announced", () => {
  assert.equal(
    renderExposition([{ name: "joblet_grpc_calls_total", help: "Calls.", type: "counter", samples: [] }]),
    "# HELP joblet_grpc_calls_total Calls.\n# TYPE joblet_grpc_calls_total counter\n",
  );
  assert.equal(renderExposition([]), "");
});

test("label values escape backslash, double quote and line feed; HELP escapes backslash and line feed only", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('say "hi"\\\nthere'), 'say "hi"\\\\\\nthere');
  const text = renderExposition([{ name: "m", help: "h", type: "gauge", samples: [{ labels: { a: 'x"y', b: "z" }, value: 1 }] }]);
  assert.match(text, /^m\{a="x\\"y",b="z"\} 1$/m);
});

test("values: integers and floats as decimals, NaN and infinities in Prometheus spelling", () => {
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(1.5), "1.5");
  assert.equal(formatValue(123456789012), "123456789012");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(formatValue(Number.NaN), "NaN");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
});

test("malformed metric or label names are refused", () => {
  assert.throws(() => renderExposition([{ name: "bad-name", help: "", type: "gauge", samples: [] }]), /invalid metric name/);
  assert.throws(() => renderExposition([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { "job-id": "x" }, value: 1 }] }]), /invalid label name/);
  assert.throws(() => renderExposition([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { __reserved: "x" }, value: 1 }] }]), /invalid label name/);
});

test("a histogram's buckets are cumulative and end with +Inf = count; _sum and _count follow", () => {
  const h = new Histogram([0.1, 0.5, 1]);
  for (const v of [0.05, 0.1, 0.3, 0.7, 2]) h.observe(v);
  const text = renderExposition([{ name: "joblet_job_start_seconds", help: "Start latency.", type: "histogram", samples: h.samples() }]);
  assert.equal(
    text,
    [
      "# HELP joblet_job_start_seconds Start latency.",
      "# TYPE joblet_job_start_seconds histogram",
      'joblet_job_start_seconds_bucket{le="0.1"} 2',
      'joblet_job_start_seconds_bucket{le="0.5"} 3',
      'joblet_job_start_seconds_bucket{le="1"} 4',
      'joblet_job_start_seconds_bucket{le="+Inf"} 5',
      "joblet_job_start_seconds_sum 3.15",
      "joblet_job_start_seconds_count 5",
      "",
    ].join("\n"),
  );
});

test("histogram bounds must be strictly increasing and finite", () => {
  assert.throws(() => new Histogram([1, 1]), /strictly increasing/);
  assert.throws(() => new Histogram([1, Infinity]), /finite/);
});
