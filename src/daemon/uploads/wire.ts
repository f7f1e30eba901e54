// Mapping of the wire's UploadEntry to the writer's entry. Only the kind needs converting; every other field
// is checked by the writer, which sees the same values.
import { JobletError } from "../../shared/errors.js";
import { UploadKind, type UploadEntry } from "../../shared/proto/joblet.js";
import { entryLabel } from "./entry-path.js";
import type { UploadEntryIn, UploadEntryKind } from "./writer.js";

const KIND_FROM_WIRE = new Map<number, UploadEntryKind>([
  [UploadKind.FILE, "file"],
  [UploadKind.DIRECTORY, "directory"],
  [UploadKind.SYMLINK, "symlink"],
]);

/** Converts wire entry `index` (1-based, as the writer counts) to the writer's form; throws INVALID_ARGUMENT on an unknown or unset kind. */
export function entryFromWire(e: UploadEntry, index: number): UploadEntryIn {
  const kind = KIND_FROM_WIRE.get(e.kind);
  if (kind === undefined) {
    // ts-proto's decoder stores unknown enum numbers as they are, so the number is what the client sent.
    const given = e.kind === UploadKind.UPLOAD_KIND_UNSPECIFIED ? "UPLOAD_KIND_UNSPECIFIED (0)" : String(e.kind);
    throw new JobletError("INVALID_ARGUMENT", `${entryLabel(index, e.path)}: kind: expected FILE, DIRECTORY or SYMLINK, got ${given}`);
  }
  return { path: e.path, kind, mode: e.mode, size: e.size, linkTarget: e.linkTarget };
}
