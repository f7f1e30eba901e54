// Server TLS: mutual authentication against our CA, TLS 1.3 only. grpc-js's createSsl has no minimum-version
// option and accepts TLS 1.2, so this subclasses ServerCredentials with the secure-context options we need.
import { ServerCredentials } from "@grpc/grpc-js";
import type { SecureServerOptions } from "node:http2";

class MutualTls13Credentials extends ServerCredentials {
  constructor(caPem: string, certPem: string, keyPem: string) {
    const server: SecureServerOptions = { requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" };
    super(server, { ca: caPem, cert: certPem, key: keyPem, minVersion: "TLSv1.3" });
  }

  _equals(other: ServerCredentials): boolean {
    return this === other;
  }
}

/** Credentials that require a client certificate signed by `caPem` and refuse anything below TLS 1.3. */
export function serverCredentials(tls: { caPem: string; certPem: string; keyPem: string }): ServerCredentials {
  return new MutualTls13Credentials(tls.caPem, tls.certPem, tls.keyPem);
}
