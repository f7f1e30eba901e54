// Job identifiers. IDs are random UUIDs (v4): unique forever, so an ID is never reused after a daemon
// restart, and safe as a path component (bundle, log and cgroup names are built from them).
import { randomUUID } from "node:crypto";
import { invalidArgument } from "./errors.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PREFIX_RE = /^[0-9a-f-]{1,36}$/;

/** A fresh job ID. */
export function newJobId(): string {
  return randomUUID();
}

/** True when `id` is a full job ID as this daemon makes them. */
export function isJobId(id: string): boolean {
  return UUID_RE.test(id);
}

/** Checks that `text` can be a job ID or a prefix of one (lowercase hex and dashes); returns it. */
export function validateIdPrefix(field: string, text: string): string {
  if (!PREFIX_RE.test(text)) throw invalidArgument(field, "a job ID or a unique prefix of one (hex digits and dashes)", text);
  return text;
}

/** The short form shown in tables: the first 8 characters. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
