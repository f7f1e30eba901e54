// One RunJobWithUploads call as the upload drives it: sends that wait for 'drain' when the HTTP/2 stream's
// buffer is full, responses taken one at a time with a deadline, and the call's failure surfacing in whichever
// of the two is waiting (a server that fails the call while rnx waits for 'drain' must not leave rnx waiting
// for ever: no 'drain' comes after the call has ended). The stream is described here by the members used;
// client.ts makes one from a gRPC call (grpc/call.ts).
import type { UploadReq, UploadRes } from "../../shared/proto/joblet.js";

/** A bidirectional RunJobWithUploads stream: emits 'data' (UploadRes), 'error' (the call's failure), 'end', 'drain'. */
export interface UploadStream extends NodeJS.EventEmitter {
  /** False when the buffer is full: wait for 'drain' before writing more. */
  write(msg: UploadReq): boolean;
  /** Half-closes: the server sees the end of the client's messages. */
  end(): void;
  /** Ends the call at once; the server sees it cancelled. */
  cancel(): void;
}

/** gRPC's DEADLINE_EXCEEDED, for a wait that ran out; mapped like any failed call. */
const DEADLINE_EXCEEDED = 4;

/** A RunJobWithUploads call in progress. */
export class UploadCall {
  private failure: Error | undefined;
  private serverEnded = false;
  /** The last write returned false and no 'drain' has come since. */
  private blocked = false;
  private readonly responses: UploadRes[] = [];
  private waiters: Array<() => void> = [];

  /**
   * `mapError` turns what the stream emits as 'error' (a failed call's RpcError) into the error to report;
   * `server` names the other end in messages ("joblet at host:port").
   */
  constructor(
    private readonly stream: UploadStream,
    private readonly mapError: (err: unknown) => Error,
    readonly server: string,
  ) {
    stream.on("data", (res: UploadRes) => {
      this.responses.push(res);
      this.wake();
    });
    stream.on("error", (err: unknown) => {
      this.failure ??= mapError(err);
      this.wake();
    });
    stream.on("end", () => {
      this.serverEnded = true;
      this.wake();
    });
    stream.on("drain", () => {
      this.blocked = false;
      this.wake();
    });
  }

  /** Writes one message; when the buffer is full, resolves only once it has drained. Rejects with the call's failure. */
  async send(msg: UploadReq): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(msg)) this.blocked = true;
    while (this.blocked && !this.failure && !this.serverEnded) await this.changed();
    if (this.failure) throw this.failure;
  }

  /** Half-closes the call: everything has been sent. */
  finishWrites(): void {
    this.stream.end();
  }

  /**
   * The server's next message, or undefined if it ended the call without one. Rejects with the call's
   * failure, or after `timeoutMs` with DEADLINE_EXCEEDED (the call is then cancelled).
   */
  async receive(timeoutMs: number): Promise<UploadRes | undefined> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.wake();
    }, timeoutMs);
    try {
      while (this.responses.length === 0 && !this.failure && !this.serverEnded && !timedOut) await this.changed();
    } finally {
      clearTimeout(timer);
    }
    const next = this.responses.shift();
    if (next) return next;
    if (this.failure) throw this.failure;
    if (timedOut) {
      this.failure = this.mapError({ code: DEADLINE_EXCEEDED, details: `no answer within ${timeoutMs} ms` });
      this.stream.cancel();
      throw this.failure;
    }
    return undefined;
  }

  /** Ends the call at once: the server drops the job and what was uploaded. Harmless after a failure. */
  cancel(): void {
    this.stream.cancel();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
