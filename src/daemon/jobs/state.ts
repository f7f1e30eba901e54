// The job state machine: the legal transitions between states.
import { JobletError } from "../../shared/errors.js";
import type { JobStatus } from "../store/record.js";

/** Every legal move; anything else is a bug or a race and fails with FAILED_PRECONDITION. */
const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  INITIALIZING: ["RUNNING", "FAILED", "STOPPED"],
  RUNNING: ["COMPLETED", "FAILED", "STOPPED"],
  COMPLETED: [],
  FAILED: [],
  STOPPED: [],
};

// Defined with the statuses (the store keeps finished jobs' records by it); the table above agrees.
export { isFinal } from "../store/record.js";

/** Throws unless `from → to` is a legal transition. */
export function assertTransition(id: string, from: JobStatus, to: JobStatus): void {
  if (!TRANSITIONS[from].includes(to)) {
    throw new JobletError("FAILED_PRECONDITION", `job ${id} cannot go from ${from} to ${to}`);
  }
}

