// A client's role, from its certificate's OU. Its own file so that code which only needs the rule (the
// daemon's per-call authorisation, the CLI) does not load an X.509 library with it.

/** What a client certificate lets its holder do: admin everything, viewer read-only. */
export type CertRole = "admin" | "viewer";

/** The role an OU (or several) grants: compared case-insensitively, admin wins over viewer; none otherwise. */
export function roleFromOU(ou: string | readonly string[] | undefined): CertRole | undefined {
  const units = (typeof ou === "string" ? [ou] : (ou ?? [])).map((u) => u.trim().toLowerCase());
  if (units.includes("admin")) return "admin";
  if (units.includes("viewer")) return "viewer";
  return undefined;
}
