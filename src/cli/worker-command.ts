// `randmask worker` (pulls sweep runs from a Redis queue) and the `--queue` flag that
// `sweep submit|collect` share with it.
import { positiveInt, nonNegInt, UsageError, defineCommand, type FlagDef } from "./args.js";
import { parseQueueUrl, type QueueAddress } from "../sweep/queue/redis-url.js";
import { checkOutputFolder } from "./shared-flags.js";

export const QUEUE_FLAG: FlagDef = {
  type: "string", arg: "URL", defaultText: "$RANDMASK_QUEUE",
  description: "the Redis queue, redis://[:password@]host[:port][/db]; the password is never printed (the environment variable keeps it out of `ps`). " +
    "A missing or malformed URL exits 2; a well-formed one where no Redis answers (or the password is wrong) exits 1 after 3 tries",
};

/** The queue's address from --queue or $RANDMASK_QUEUE; a usage error (exit 2) when neither is given or it is malformed. */
export function queueAddress(flag: string | undefined): QueueAddress {
  if (flag === "") throw new UsageError("--queue is empty: expected a URL, e.g. --queue redis://127.0.0.1:6379/0 (an empty --queue does not fall back to RANDMASK_QUEUE)");
  const url = flag ?? process.env.RANDMASK_QUEUE;
  if (!url) throw new UsageError("--queue URL is required (or set RANDMASK_QUEUE), e.g. --queue redis://127.0.0.1:6379/0");
  try { return parseQueueUrl(url); } catch (e) { throw new UsageError((e as Error).message); }
}

export const workerCommand = defineCommand({
  name: "worker",
  summary: "Pull sweep runs from a Redis queue (filled by `sweep submit`), run them one process each, and return each result " +
    "with its adapter to the queue; a run whose worker dies goes back to the queue. Stops on Ctrl-C, handing runs in flight back.",
  flags: {
    queue: QUEUE_FLAG,
    concurrency: { type: "integer", default: 1, check: positiveInt, expected: "a positive integer", description: "runs at once, the cores split between them" },
    device: { type: "string", default: "cpu", arg: "DEV", description: "only cpu: each run trains on the device its sweep file's `device` key names (cpu by default)" },
    artifacts: { type: "string", arg: "DIR", defaultText: "in the results",
      description: "shared folder for each run's files (DIR/<run id>/); without it they travel in the result (up to --embed-mib)" },
    "embed-mib": { type: "number", default: 16, check: (v) => v > 0, expected: "a positive number", description: "largest run folder sent in the result (MiB); larger ones stay on this machine" },
    "lock-s": { type: "number", default: 30, check: (v) => v >= 2, expected: "a number of seconds, at least 2",
      description: "a run whose worker stops renewing its lock for this long goes back to the queue" },
    "max-retries": { type: "integer", default: 2, check: nonNegInt, expected: "a non-negative integer",
      description: "times a run is taken back from a lost worker before it is marked failed" },
  },
  example: "worker --queue redis://10.0.0.5:6379/0 --concurrency 2",
  async run(v) {
    if (v.device !== "cpu") {
      throw new UsageError(/^cuda(:\d+)?$/.test(v.device)
        ? `--device ${v.device}: each run trains on the device its sweep file's "device" key names; set "device": "${v.device}" there and leave --device out`
        : `--device ${v.device}: expected cpu`);
    }
    const address = queueAddress(v.queue);
    if (v.artifacts !== undefined) checkOutputFolder("artifacts", v.artifacts, "each run's files");
    const { runWorker } = await import("../sweep/queue/worker.js"); // BullMQ loads only for queue commands
    await runWorker(address, { concurrency: v.concurrency, artifactsDir: v.artifacts, embedLimitBytes: v["embed-mib"] * 2 ** 20,
      lockS: v["lock-s"], maxRetries: v["max-retries"] });
  },
});
