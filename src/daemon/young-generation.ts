// V8 sizes the young generation (new space, two semi-spaces) adaptively: after a scavenge in which most of it
// survived, it doubles the semi-spaces, up to 8 MiB each on 64-bit Node 20, i.e. 16 MiB of new space. Loading
// the daemon's modules and opening its state is exactly that pattern (almost everything allocated survives),
// so start-up alone grows the young generation to its maximum, and V8 hands the pages back only when its
// memory reducer runs, 20–40 s into idleness. Measured (bench/daemon-rss.ts): ~16 MiB of an idle daemon's RSS
// for its first half minute; a cap with --max-semi-space-size instead costs 20–30 % more daemon CPU when
// streaming logs, which needs a large young generation.
//
// So the growth factor is held at 1 while the daemon starts and put back to V8's default once it serves:
// start-up runs in the initial 1 MiB semi-spaces and later work grows them as usual. V8 reads
// --semi-space-growth-factor each time it grows new space, so setting it at run time takes effect; if a
// future V8 ignored the change, the only effect would be a larger idle RSS again.
import { setFlagsFromString } from "node:v8";

/** V8's default --semi-space-growth-factor (Node 20, V8 11.3): new space doubles when it grows. */
const DEFAULT_GROWTH_FACTOR = 2;

/** Keeps V8's young generation at its current size (call before loading the daemon's modules). */
export function holdYoungGeneration(): void {
  setFlagsFromString("--semi-space-growth-factor=1");
}

/** Lets V8 grow the young generation again, as by default. */
export function releaseYoungGeneration(): void {
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}
