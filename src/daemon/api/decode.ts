// Request decoding that never throws. grpc-js answers a throwing decoder with INTERNAL ("Error deserializing
// request"), but bytes that are not our message are the client's fault: such a request reaches its handler
// marked with the error to refuse it with (INVALID_ARGUMENT naming the field where one can be named).
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { JobletServiceService } from "../../shared/proto/joblet.js";

/** Marks a request whose bytes did not decode; the handler refuses it with this error. */
export const DECODE_ERROR = Symbol("decodeError");

/** uint64 fields whose values past 2^53 the generated decoder cannot hold (it throws), by RPC and field number. */
const UINT64_FIELDS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  RunJob: { 100: "timeoutMs" },
  GetJobLogs: { 100: "fromOffset" },
};

/**
 * The service definition with request decoders that never throw: grpc-js answers a throwing decoder with
 * INTERNAL ("Error deserializing request"), but bytes that are not our message are the client's fault.
 */
export function tolerantService(): typeof JobletServiceService {
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(JobletServiceService)) {
    const decode = def.requestDeserialize as (b: Buffer) => unknown;
    const rpc = def.path.slice(def.path.lastIndexOf("/") + 1);
    out[name] = {
      ...def,
      requestDeserialize: (b: Buffer) => {
        try {
          return decode(b);
        } catch (err) {
          return { [DECODE_ERROR]: decodeProblem(rpc, b, err as Error), id: "" };
        }
      },
    };
  }
  return out as typeof JobletServiceService;
}

/** INVALID_ARGUMENT naming the uint64 field that is too large, or saying the bytes are not the RPC's message. */
function decodeProblem(rpc: string, b: Buffer, err: Error): JobletError {
  const fields = UINT64_FIELDS[rpc] ?? {};
  try {
    const r = new BinaryReader(b);
    while (r.pos < r.len) {
      const [no, type] = r.tag();
      if (type === WireType.Varint && fields[no]) {
        const v = BigInt(r.uint64().toString());
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) return invalidArgument(fields[no]!, `at most ${Number.MAX_SAFE_INTEGER}`, v.toString());
      } else r.skip(type);
    }
  } catch {
    // not protobuf at all: said below
  }
  return new JobletError("INVALID_ARGUMENT", `request: expected a protobuf ${rpc} message, got ${b.length} bytes that do not decode (${err.message})`);
}
