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
 * The text of `--queue` as it may be printed: the scheme, user, host, port and path of a URL, with its
 * password, query string and fragment replaced by `***`; `***` alone for text that is no URL with a host
 * (a password given bare, say), since any part of it may be the secret.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try { u = new URL(url); } catch { return "***"; }
  if (!u.host) return "***";
  const auth = u.username || u.password ? `${u.username}${u.password ? ":***" : ""}@` : "";
  return `${u.protocol}//${auth}${u.host}${u.pathname}${u.search ? "?***" : ""}${u.hash ? "#***" : ""}`;
}

/**
 * Parses `--queue`. Throws one error naming the flag and the expected form, with the URL redacted (redactUrl).
 * Defaults: port 6379, database 0.
 */
export function parseQueueUrl(url: string): QueueAddress {
  const shown = redactUrl(url);
  const bad = (why: string): never => {
    throw new Error(`--queue ${shown}: ${why} (expected redis://[:password@]host[:port][/db])`);
  };
  let u: URL;
  try { u = new URL(url); } catch { return bad("not a URL"); }
  if (!u.hostname) bad("no host"); // first: without a host the scheme may be part of a bare password ("abc:def")
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") bad(`unsupported scheme '${u.protocol}'`);
  const port = u.port === "" ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, "");
  if (dbText !== "" && !/^\d+$/.test(dbText)) bad(`database '${dbText}' is not a number`);
  if (u.search || u.hash) bad("query strings and fragments are not read");
  const connection: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port, db: dbText === "" ? 0 : Number(dbText),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
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
