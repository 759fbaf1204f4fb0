// A Hearth node as a child process, for the multi-node job tests: `node --import tsx test/jobs/node-entry.ts`.
// Env: REDIS_URL, JOBS_PREFIX, DATA_DIR (shared store), HEARTH_TUNING (JSON worker tuning). Prints "READY <port>".
import { makeJobsRig } from './rig.ts';

const rig = await makeJobsRig({
  redisUrl: process.env.REDIS_URL!,
  prefix: process.env.JOBS_PREFIX!,
  dataDir: process.env.DATA_DIR!,
  workerOptions: JSON.parse(process.env.HEARTH_TUNING || '{}'),
});
await rig.hearth.app.listen({ port: 0, host: '127.0.0.1' });
const addr = rig.hearth.app.server.address();
process.stdout.write(`READY ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
const stop = () => {
  rig.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
