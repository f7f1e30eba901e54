// Pure checks of what an upload entry names: its path relative to the work dir and a symlink's target, plus
// the quoting that puts client-chosen strings into error messages safely. Linux limits behind the numbers:
// NAME_MAX is 255 bytes per component and PATH_MAX 4096 bytes per path, both counted in bytes, not characters.

/** Longest entry path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest single path component accepted, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;
/** Most components an entry path may have. */
export const MAX_DEPTH = 128;
/** Longest symlink target accepted, in UTF-8 bytes (Linux PATH_MAX; symlink(2) refuses longer). */
export const MAX_LINK_TARGET_BYTES = 4096;
/** Longest slice of a client string quoted in a message, in UTF-16 code units. */
export const MAX_QUOTED_CHARS = 200;

// Lone surrogates cannot be encoded as UTF-8: Buffer.from would turn each into U+FFFD, so the name on disk would
// differ from the name the client sent.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Characters JSON.stringify leaves as they are but that would garble a terminal or a log line: DEL and the C1
// controls, line/paragraph separators, bidi overrides and isolates, the BOM.
const UNSAFE_IN_MESSAGE = /[\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/g;

/** JSON-quotes a client string for an error message: control and bidi characters escaped, cut after 200 characters. */
export function quoteForMessage(s: string): string {
  const cut = s.length > MAX_QUOTED_CHARS;
  const quoted = JSON.stringify(cut ? s.slice(0, MAX_QUOTED_CHARS) : s).replace(
    UNSAFE_IN_MESSAGE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return cut ? `${quoted}... (${Buffer.byteLength(s)} bytes)` : quoted;
}

/** Names entry `index` (1-based, in stream order) and its path, for the start of an error message. */
export function entryLabel(index: number, entryPath: string): string {
  return `upload entry ${index} ${quoteForMessage(entryPath)}`;
}

/**
 * Checks an entry path: non-empty, relative, "/"-separated, no "", "." or ".." component, no NUL, valid UTF-8,
 * at most 4096 bytes, 255 bytes per component and 128 components. Backslashes are ordinary characters.
 * Returns `expected …, got …` when the path is refused, undefined when it is acceptable.
 */
export function checkEntryPath(entryPath: string): string | undefined {
  if (typeof entryPath !== "string") return `expected a string, got ${typeof entryPath}`;
  if (entryPath === "") return `expected a non-empty relative path, got ""`;
  if (entryPath.includes("\0")) return `expected no NUL byte, got ${quoteForMessage(entryPath)}`;
  if (LONE_SURROGATE.test(entryPath)) return `expected valid UTF-8, got ${quoteForMessage(entryPath)}`;
  const bytes = Buffer.byteLength(entryPath);
  if (bytes > MAX_PATH_BYTES) return `expected at most ${MAX_PATH_BYTES} bytes, got ${bytes} bytes`;
  if (entryPath.startsWith("/")) return `expected a path relative to /work (no leading "/"), got ${quoteForMessage(entryPath)}`;
  const components = entryPath.split("/");
  if (components.length > MAX_DEPTH) return `expected at most ${MAX_DEPTH} components, got ${components.length}`;
  for (let i = 0; i < components.length; i++) {
    const c = components[i]!;
    if (c === "") {
      const where = i === components.length - 1 ? "a trailing \"/\"" : "\"//\"";
      return `expected no empty component (no "//", no trailing "/"), got ${where}`;
    }
    if (c === "." || c === "..") return `expected no "." or ".." component, got ${JSON.stringify(c)} as component ${i + 1}`;
    const cBytes = Buffer.byteLength(c);
    if (cBytes > MAX_COMPONENT_BYTES) return `expected at most ${MAX_COMPONENT_BYTES} bytes per component, got ${cBytes} bytes in component ${i + 1}`;
  }
  return undefined;
}

/**
 * Checks a symlink target: non-empty, no NUL, valid UTF-8, at most 4096 bytes. Any target is otherwise stored as
 * is (absolute ones included): it resolves inside the job's own filesystem view, and the daemon never follows it.
 * Returns `expected …, got …` when refused, undefined when acceptable.
 */
export function checkLinkTarget(target: string): string | undefined {
  if (typeof target !== "string") return `expected a string, got ${typeof target}`;
  if (target === "") return `expected a non-empty link target, got ""`;
  if (target.includes("\0")) return `expected no NUL byte, got ${quoteForMessage(target)}`;
  if (LONE_SURROGATE.test(target)) return `expected valid UTF-8, got ${quoteForMessage(target)}`;
  const bytes = Buffer.byteLength(target);
  if (bytes > MAX_LINK_TARGET_BYTES) return `expected at most ${MAX_LINK_TARGET_BYTES} bytes, got ${bytes} bytes`;
  return undefined;
}
