// The one way rnx prints a failure it understands: "rnx: error: <what happened>" and, when known,
// "hint: <what to do>", each on its own line of stderr.
import type { JobletError } from "../shared/errors.js";

/** The stderr lines for `err`, ending in a newline. */
export function jobletErrorText(err: JobletError): string {
  return `rnx: error: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ""}`;
}
