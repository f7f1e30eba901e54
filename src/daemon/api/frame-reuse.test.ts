import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { Server, ServerCredentials, credentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from "@grpc/grpc-js";
import { JobletServiceClient, JobletServiceService, Stream, type DataChunk, type EmptyRequest, type GetJobLogsReq, type Jobs } from "../../shared/proto/joblet.js";
import { DataChunkBatch, dataChunkSerializer } from "./chunk-serializer.js";
import { FRAME_BYTES, frameStats, installFrameReuse } from "./frame-reuse.js";

// A real grpc-js server and client over loopback: GetJobLogs with the framing serializer, ListJobs without.
let server: Server;
let client: JobletServiceClient;
let sent: Buffer[] = [];
// How many of `sent` each write carries (DataChunkBatch when more than one); 1 each when empty.
let perWrite: number[] = [];

before(async () => {
  assert.equal(installFrameReuse(), true, "grpc-js has the internals frame-reuse.ts patches");
  assert.equal(installFrameReuse(), true, "installing twice is harmless");
  server = new Server();
  server.addService(
    {
      getJobLogs: { ...JobletServiceService.getJobLogs, responseSerialize: dataChunkSerializer() },
      listJobs: JobletServiceService.listJobs,
    } as unknown as typeof JobletServiceService,
    {
      getJobLogs: (call: ServerWritableStream<GetJobLogsReq, DataChunk>) => void streamChunks(call),
      listJobs: (_call: ServerUnaryCall<EmptyRequest, Jobs>, cb: sendUnaryData<Jobs>) => cb(null, { jobs: [] }),
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new JobletServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
});

after(() => {
  client.close();
  server.forceShutdown();
});

// Sends chunks of random sizes (some larger than a pooled frame) as streamLogs does, and scribbles over each
// payload once its write completed: if grpc-js still needed the bytes then, the client would see it.
async function streamChunks(call: ServerWritableStream<GetJobLogsReq, DataChunk>): Promise<void> {
  let offset = 0;
  let i = 0;
  for (let w = 0; i < sent.length; w++) {
    const msgs: DataChunk[] = [];
    for (let k = 0; k < (perWrite[w] ?? 1) && i < sent.length; k++, i++) {
      msgs.push({ payload: Buffer.from(sent[i]!), stream: i % 2 ? Stream.STDERR : Stream.STDOUT, offset });
      offset += sent[i]!.length;
    }
    const msg = msgs.length === 1 ? msgs[0]! : (new DataChunkBatch(msgs) as unknown as DataChunk);
    if (!call.write(msg, () => msgs.forEach((m) => (m.payload as Buffer).fill(0x21)))) await once(call, "drain");
  }
  call.end();
}

test("GetJobLogs through reused frames: every byte arrives in order, with concurrent streams held back by flow control", async () => {
  perWrite = [];
  sent = Array.from({ length: 120 }, (_, i) => randomBytes(i % 10 === 9 ? FRAME_BYTES + 1000 : 1 + Math.floor(Math.random() * 65536)));
  const before = { ...frameStats };
  const streams = 3;
  const results = await Promise.all(Array.from({ length: streams }, () => receive()));
  for (const got of results) {
    assert.equal(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.ok(got[i]!.equals(sent[i]!), `chunk ${i} (${sent[i]!.length} bytes)`);
  }
  assert.equal(frameStats.written - before.written, streams * sent.length, "every message was framed by the serializer");
  assert.ok(frameStats.taken - before.taken >= streams * sent.length);
});

test("batched writes (DataChunkBatch) reach a standard gRPC client as their separate messages, in order", async () => {
  sent = Array.from({ length: 3000 }, (_, i) => randomBytes(1 + (i % 200)));
  perWrite = Array.from({ length: 100 }, (_, w) => 1 + (w % 60));
  const before = { ...frameStats };
  const got = await receive();
  assert.equal(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(got[i]!.equals(sent[i]!), `message ${i}`);
  assert.ok(frameStats.written - before.written < sent.length, `${frameStats.written - before.written} writes for ${sent.length} messages`);
});

async function receive(): Promise<Buffer[]> {
  const got: Buffer[] = [];
  let n = 0;
  for await (const c of client.getJobLogs({ id: "x", fromOffset: 0 }) as AsyncIterable<DataChunk>) {
    got.push(Buffer.from(c.payload));
    // A slow reader now and then: the server's writes wait for HTTP/2 window updates.
    if (++n % 20 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  return got;
}

test("other methods keep grpc-js's own serialization", async () => {
  const before = { ...frameStats };
  const res = await new Promise<Jobs>((resolve, reject) => client.listJobs({}, (err, r) => (err ? reject(err) : resolve(r!))));
  assert.deepEqual(res.jobs, []);
  assert.deepEqual(frameStats, before);
});
