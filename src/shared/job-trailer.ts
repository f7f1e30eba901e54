// The job's final record in the trailers of a GetJobLogs call that ended with the job: an extension of the
// wire API (gRPC binary metadata, which other clients ignore) holding the GetJobStatusRes that GetJobStatus
// would return. `rnx run` reads the exit code from it instead of asking GetJobStatus once more after the
// output ends: one round trip and one daemon call less per run. A client that finds no such trailer (an older
// or the reference daemon) asks GetJobStatus as before.
import { GetJobStatusRes } from "./proto/joblet.js";

/** The trailer's key; "-bin" makes its value base64 of bytes on the wire (gRPC binary metadata). */
export const JOB_TRAILER = "joblet-job-bin";

/**
 * Largest encoded record sent as a trailer, bytes. Trailers are HTTP/2 headers, which peers cap (nghttp2, as in
 * Node, at 64 KiB of header list by default): a job with long arguments is not sent this way (the client then
 * asks GetJobStatus).
 */
export const JOB_TRAILER_MAX_BYTES = 8 * 1024;

/** The trailer value for `job` (protobuf bytes), or undefined when it is larger than JOB_TRAILER_MAX_BYTES. */
export function encodeJobTrailer(job: GetJobStatusRes): Buffer | undefined {
  const bytes = GetJobStatusRes.encode(job).finish();
  return bytes.length <= JOB_TRAILER_MAX_BYTES ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : undefined;
}

/**
 * The job in a received trailer value (base64, padded or not, as HTTP/2 delivers it), or undefined when there
 * is none or it does not decode.
 */
export function decodeJobTrailer(value: string | string[] | undefined): GetJobStatusRes | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  try {
    return GetJobStatusRes.decode(Buffer.from(text, "base64"));
  } catch {
    return undefined;
  }
}
