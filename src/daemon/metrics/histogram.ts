// A cumulative histogram as Prometheus defines it: per upper bound `le` the count of observations ≤ it,
// a final `+Inf` bucket equal to the total count, plus the sum of all observations.
import type { Sample } from "./exposition.js";

/** Counts observations into fixed buckets; bounds are in the unit of the observations (seconds here). */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** @param bounds upper bounds, strictly increasing and finite; `+Inf` is added when rendering. */
  constructor(readonly bounds: readonly number[]) {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i]! <= bounds[i - 1]!)) {
        throw new Error(`histogram bounds must be finite and strictly increasing, got ${bounds.join(", ")}`);
      }
    }
    this.counts = bounds.map(() => 0);
  }

  /** Records one observation. */
  observe(value: number): void {
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** The `_bucket` (cumulative, ending with `le="+Inf"`), `_sum` and `_count` samples. */
  samples(): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i]!;
      out.push({ suffix: "_bucket", labels: { le: String(b) }, value: cumulative });
    });
    out.push({ suffix: "_bucket", labels: { le: "+Inf" }, value: this.count });
    out.push({ suffix: "_sum", value: this.sum }, { suffix: "_count", value: this.count });
    return out;
  }
}
