// Removing what a job left behind: its copy of the input once no chunk reads it, the chunks no node has started
// (cancel, a model gone), and every store object of a job past retention.
import { Job, type Queue } from 'bullmq';
import type { ObjectStore } from '../model-store/index.ts';
import type { JobsLog } from './job-context.ts';

/** Deletes the job's copy of its input (jobs/{id}/input/). */
export async function dropInputs(store: ObjectStore, id: string): Promise<void> {
  for (const o of await store.list(`jobs/${id}/input/`)) await store.delete(o.key);
}

/** Deletes every store object of the job (results and any inputs left). */
export async function dropObjects(store: ObjectStore, id: string): Promise<void> {
  for (const o of await store.list(`jobs/${id}/`)) await store.delete(o.key);
}

/** Removes the chunks no node has started; if none is running either, the parent is removed too. */
export async function dropUnstarted(parents: Queue, store: ObjectStore, id: string, log: JobsLog): Promise<void> {
  const parent = await Job.fromId(parents, id);
  if (!parent) return;
  await parent.removeUnprocessedChildren();
  const left = await parent.getDependenciesCount({ unprocessed: true });
  if ((left.unprocessed ?? 0) === 0 && (await parent.getState()) === 'waiting-children') {
    // A chunk may start between the check and the removal; then the parent stays and finalises the job.
    const removed = await parent.remove({ removeChildren: false }).then(
      () => true,
      () => false,
    );
    if (removed)
      await dropInputs(store, id).catch((e: unknown) =>
        log.warn({ err: e, job: id }, 'the input objects of a cancelled job were not deleted'),
      );
  }
}
