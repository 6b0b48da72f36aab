// `randmask sweep submit`: one BullMQ job per run, the run's id in the job id, so submitting
// again adds only runs the queue does not hold (queued, running, done or failed).
import { Queue } from "bullmq";
import type { Sweep } from "../spec.js";
import { QUEUE_NAME, jobIdOf, runJobs } from "./payload.js";
import { oneShot, redactError, type QueueAddress } from "./redis-url.js";

export interface Submitted { added: number; present: number; retried: number }

/**
 * Enqueues the sweep's runs that the queue lacks, in sweep-file order; with `retryFailed`, runs the
 * queue holds as failed are queued again. Jobs stay in Redis after they finish (kilobytes each),
 * which is what makes a second submit a no-op for them.
 */
export async function submitSweep(sweep: Sweep, address: QueueAddress, retryFailed = false): Promise<Submitted> {
  const queue = new Queue(QUEUE_NAME, { connection: oneShot(address) });
  queue.on("error", () => {}); // reported through the rejected call below
  try {
    await queue.waitUntilReady();
    const jobs = runJobs(sweep);
    const held = await Promise.all(jobs.map((j) => queue.getJob(jobIdOf(j.id))));
    const fresh = jobs.filter((_, i) => !held[i]);
    // attempts 1: a run that fails is a result; only a lost worker (stalled job) gives it another try
    await queue.addBulk(fresh.map((j) => ({ name: "run", data: j, opts: { jobId: jobIdOf(j.id), attempts: 1 } })));
    let retried = 0;
    if (retryFailed) {
      for (const job of held) if (job && (await job.getState()) === "failed") { await job.retry("failed"); retried++; }
    }
    return { added: fresh.length, present: jobs.length - fresh.length, retried };
  } catch (e) {
    throw new Error(`--queue ${address.shown}: ${redactError(e, address)}`);
  } finally {
    await queue.close();
  }
}
