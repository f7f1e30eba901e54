// A sparse map from output offsets to file positions of one k8s-file log, so that reading from an offset
// starts near it instead of decoding the file from byte 0. Points sit at record starts (records are never
// split) and are spaced by FILE bytes, not output bytes: the decoded output of a record is never larger
// than its line, so a spacing of 1 MiB of file bounds both the bytes decoded to reach any offset and the
// index size (1 GiB of log → ~1024 points, ~50 KB), even for logs of tiny lines whose prefixes dominate.
//
// Every point any reader records is correct (readers only start at a known point and decode forward), so
// concurrent readers may extend the same index in any interleaving; points are only ever appended.

/** A record boundary: the record starting at file position `filePos` has its first output byte at `offset`. */
export interface IndexPoint {
  readonly offset: number;
  readonly filePos: number;
}

/** File bytes between index points. */
export const INDEX_SPACING_FILE_BYTES = 1 << 20;

/** The sparse offset index of one log file (one inode). */
export class OffsetIndex {
  private readonly points: IndexPoint[] = [{ offset: 0, filePos: 0 }];
  private furthest: IndexPoint = { offset: 0, filePos: 0 };

  /** File position from which the next point may be added; readers compare against it per record. */
  nextPointFilePos = INDEX_SPACING_FILE_BYTES;

  /** The end of the complete records decoded so far by any reader: file position and total output bytes. */
  get frontier(): IndexPoint {
    return this.furthest;
  }

  /** The known record boundary closest before `offset`: decoding from there reaches `offset`. */
  locate(offset: number): IndexPoint {
    if (this.furthest.offset <= offset) return this.furthest;
    const points = this.points;
    let lo = 0;
    let hi = points.length - 1;
    // Last point with point.offset <= offset; points[0] is offset 0, so one always exists.
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (points[mid]!.offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return points[lo]!;
  }

  /** Records that a record starts at `filePos` with output offset `offset`; kept if far enough past the last point. */
  addPoint(filePos: number, offset: number): void {
    if (filePos < this.nextPointFilePos) return;
    this.points.push({ offset, filePos });
    this.nextPointFilePos = filePos + INDEX_SPACING_FILE_BYTES;
    this.advance(filePos, offset);
  }

  /** Records that the complete records before file position `filePos` decode to `offset` output bytes. */
  advance(filePos: number, offset: number): void {
    if (filePos > this.furthest.filePos) this.furthest = { offset, filePos };
  }

  /** Number of points held (for tests and diagnostics). */
  get size(): number {
    return this.points.length;
  }
}

// Bounded so that a daemon that served many jobs' logs does not keep every index forever; an evicted index
// is rebuilt by the next reader that needs it.
const MAX_CACHED_INDEXES = 1024;
const cache = new Map<string, OffsetIndex>();

/**
 * The shared index of the file at `path` with inode `dev:ino` (a recreated file gets a fresh index);
 * `sizeBytes` is the file's current size: an index that claims more than that belongs to a truncated file
 * and is dropped.
 */
export function indexFor(path: string, dev: number, ino: number, sizeBytes: number): OffsetIndex {
  const key = `${dev}:${ino}:${path}`;
  let index = cache.get(key);
  if (index !== undefined) {
    cache.delete(key); // re-inserted below: Map order is insertion order, so the first key is least recent
    if (index.frontier.filePos > sizeBytes) index = undefined;
  }
  index ??= new OffsetIndex();
  cache.set(key, index);
  if (cache.size > MAX_CACHED_INDEXES) cache.delete(cache.keys().next().value!);
  return index;
}

/** Drops the cached indexes of the file at `path` (it was deleted; a new file there starts afresh). */
export function dropIndex(path: string): void {
  for (const key of [...cache.keys()]) {
    // Keys are `dev:ino:path`; the path itself may hold colons.
    if (key.slice(key.indexOf(":", key.indexOf(":") + 1) + 1) === path) cache.delete(key);
  }
}

/** Drops all cached indexes (for tests that measure cold reads). */
export function clearIndexCache(): void {
  cache.clear();
}
