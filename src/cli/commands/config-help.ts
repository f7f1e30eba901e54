// `rnx config-help`: a complete, commented example of rnx-config.yml and how to get a real one.
import { ExitCode } from "../exit-codes.js";
import { writeAll, type CliIo } from "../io.js";

/** The text `rnx config-help` prints. */
export const CONFIG_HELP = `# rnx-config.yml: where rnx finds Joblet servers and the credentials to use with them.
#
# Getting one: on the server, \`joblet init --dir DIR\` writes DIR/rnx-config.yml with two nodes, "default"
# (an admin certificate) and "viewer" (a read-only certificate), both pointing at the server's address. Copy it
# to this machine, keep it private (it holds private keys: chmod 600), and put it where rnx looks:
#
#   1. the file named by --config FILE
#   2. $RNX_CONFIG
#   3. ./rnx-config.yml
#   4. ./config/rnx-config.yml
#   5. ~/.rnx/rnx-config.yml
#   6. /etc/joblet/rnx-config.yml
#   7. /opt/joblet/config/rnx-config.yml
#
# Then: rnx nodes --check   (lists the nodes and contacts each)

version: "3.0"            # required, exactly "3.0"

nodes:                    # at least one; pick one with --node NAME (default: "default")
  default:
    # "host:port" of the daemon (IPv6 in brackets: "[::1]:50051"). The host must be one of the names in the
    # server certificate (joblet init puts in --address, --names, localhost, 127.0.0.1, ::1 and "joblet").
    # --server HOST:PORT or $JOBLET_SERVER override it for one command, keeping these credentials.
    address: "joblet.example.com:50051"
    # This client's certificate (PEM). Its subject's OU is the role the server grants: "admin" may do
    # everything, "viewer" may only list, show status and read logs.
    cert: |
      -----BEGIN CERTIFICATE-----
      ...
      -----END CERTIFICATE-----
    # The private key of that certificate (PEM, PKCS#8 or EC/RSA).
    key: |
      -----BEGIN PRIVATE KEY-----
      ...
      -----END PRIVATE KEY-----
    # The CA that signed the server's certificate (PEM); rnx accepts no other server.
    ca: |
      -----BEGIN CERTIFICATE-----
      ...
      -----END CERTIFICATE-----

  viewer:                 # same server, read-only certificate: rnx --node viewer list
    address: "joblet.example.com:50051"
    cert: |
      -----BEGIN CERTIFICATE-----
      ...
      -----END CERTIFICATE-----
    key: |
      -----BEGIN PRIVATE KEY-----
      ...
      -----END PRIVATE KEY-----
    ca: |
      -----BEGIN CERTIFICATE-----
      ...
      -----END CERTIFICATE-----
`;

/** Prints the example config; resolves with rnx's exit code. */
export async function configHelpCommand(io: CliIo): Promise<number> {
  await writeAll(io.stdout, CONFIG_HELP);
  return ExitCode.OK;
}
