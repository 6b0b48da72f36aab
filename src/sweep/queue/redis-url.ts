// The queue's address: `redis://[[user]:password@]host[:port][/db]` (or rediss:// for TLS).
// The password may be in it, so the URL is only ever shown redacted.
import type { RedisOptions } from "ioredis";

export interface QueueAddress {
  /** ioredis options; `maxRetriesPerRequest: null` as BullMQ workers require (commands wait out a Redis restart). */
  connection: RedisOptions;
  /** The URL with its password replaced by `***`: the only form that is printed. */
  shown: string;
}

/**
 * A URL's parts as written, for text the WHATWG parser refuses as a whole (a port out of range, say), so the
 * rest can still be shown and the fault named. The user information runs to the last "@", so a password
 * holding "/", "?" or "#" never spills into the host or path shown.
 */
function rawParts(url: string): { scheme: string; user: string; hasPassword: boolean; host: string; port: string | null; path: string; query: boolean; fragment: boolean } | null {
  const m = /^([a-z][a-z0-9+.-]*:)\/\/(.*)$/is.exec(url);
  if (!m) return null;
  const at = m[2].lastIndexOf("@");
  const userinfo = at < 0 ? null : m[2].slice(0, at);
  const after = m[2].slice(at + 1);
  const [, authority, path, query, fragment] = /^([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/s.exec(after)!;
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/s.exec(authority)!;
  return { scheme: m[1].toLowerCase(), user: userinfo === null ? "" : userinfo.split(":")[0], hasPassword: userinfo !== null && userinfo.includes(":"),
    host: hp[1], port: hp[2] ?? null, path, query: query !== undefined, fragment: fragment !== undefined };
}

/**
 * The text of `--queue` as it may be printed: the scheme, user, host, port and path of a URL, with its
 * password, query string and fragment replaced by `***`; `***` alone for text that is no URL with a host
 * (a password given bare, say), since any part of it may be the secret.
 */
export function redactUrl(url: string): string {
  let u: URL | null = null;
  try { u = new URL(url); } catch { /* shown from its parts as written, below */ }
  const p = u ? { scheme: u.protocol, user: u.username, hasPassword: u.password !== "", host: u.hostname, port: u.port || null,
    path: u.pathname, query: u.search !== "", fragment: u.hash !== "" } : rawParts(url);
  if (!p || !p.host || /\s/.test(p.host)) return "***";
  const auth = p.user || p.hasPassword ? `${p.user}${p.hasPassword ? ":***" : ""}@` : "";
  return `${p.scheme}//${auth}${p.host}${p.port === null ? "" : `:${p.port}`}${p.path}${p.query ? "?***" : ""}${p.fragment ? "#***" : ""}`;
}

/**
 * Parses `--queue`. Throws one error naming the flag and the expected form, with the URL redacted (redactUrl):
 * a port outside 1–65535, a malformed %-escape in the user or password, a '%' in the host, an unknown scheme, a database
 * that is no number.
 * Defaults: port 6379, database 0.
 */
export function parseQueueUrl(url: string): QueueAddress {
  const shown = redactUrl(url);
  const bad = (why: string): never => {
    throw new Error(`--queue ${shown}: ${why}; the form is redis://[:password@]host[:port][/db]`);
  };
  const port = (text: string) => (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? Number(text) : bad(`port ${text} is not an integer in 1–65535`));
  let u: URL;
  try { u = new URL(url); } catch {
    const raw = shown === "***" ? null : rawParts(url);
    if (raw?.port != null) port(raw.port);
    return bad("not a URL");
  }
  if (!u.hostname) bad("no host"); // first: without a host the scheme may be part of a bare password ("abc:def")
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") bad(`unsupported scheme '${u.protocol}'`);
  // redis: is no special scheme to WHATWG, so its host is opaque and may hold %-escapes no resolver takes.
  if (u.hostname.includes("%")) bad(`the host ${u.hostname} has a '%' (a host is a name of letters, digits, '-' and '.', an IPv4 address or an [IPv6] one)`);
  const dbText = u.pathname.replace(/^\//, "");
  if (dbText !== "" && !/^\d+$/.test(dbText)) bad(`database '${dbText}' is not a number`);
  if (u.search || u.hash) bad("query strings and fragments are not read");
  const decode = (text: string, what: string) => {
    try { return decodeURIComponent(text); } catch { return bad(`the ${what} has a malformed %-escape (a '%' must start %XX, two hex digits; write '%' itself as %25)`); }
  };
  const connection: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port: u.port === "" ? 6379 : port(u.port), db: dbText === "" ? 0 : Number(dbText),
    username: u.username ? decode(u.username, "user name") : undefined,
    password: u.password ? decode(u.password, "password") : undefined,
    maxRetriesPerRequest: null,
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
  return { connection, shown };
}

/**
 * An error's message for printing: the password (and the URL holding it) taken out, and a hint when a
 * rediss:// connection timed out (a plain Redis never answers the TLS hello, so that is how it shows).
 */
export function redactError(e: unknown, address: QueueAddress): string {
  let msg = e instanceof Error ? e.message : String(e);
  const pass = address.connection.password;
  if (pass) msg = msg.split(pass).join("***");
  if (address.connection.tls && /ETIMEDOUT/.test(msg)) msg += " (rediss:// needs a Redis that speaks TLS; for a plain one use redis://)";
  return msg;
}

/** Connection attempts a worker makes before it has ever reached the queue: then the address is taken to be wrong. */
export const STARTUP_ATTEMPTS = 3;

/** Connection options for a command that does one thing and exits: STARTUP_ATTEMPTS tries of ≤ 5 s, then the error. */
export function oneShot(address: QueueAddress): RedisOptions {
  return { ...address.connection, connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: (n: number) => (n >= STARTUP_ATTEMPTS ? null : 250 * n) };
}

/**
 * Connection options for a long-running command: STARTUP_ATTEMPTS tries, then the error, until `reached()`
 * says the queue answered once; after that it reconnects for as long as it takes (a Redis restart), with
 * ioredis's default back-off.
 */
export function untilReached(address: QueueAddress, reached: () => boolean): RedisOptions {
  return { ...address.connection, retryStrategy: (n: number) => (!reached() && n >= STARTUP_ATTEMPTS ? null : Math.min(n * 50, 2000)) };
}
