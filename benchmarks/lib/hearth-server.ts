// Starts a whole Hearth in its own process for the benchmarks, the way main.ts does but with request logging
// off (a log line per request would be measured too). Prints "listening <url>" once it accepts requests.
// SIGUSR2 starts a CPU profile of the main thread and a second SIGUSR2 writes it to the folder named by the
// first argument, so a profile covers only the measured window, not start-up, upload and cold starts.
//   DATA_DIR=/tmp/x PORT=0 tsx benchmarks/lib/hearth-server.ts [profile-dir]
import fs from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { loadConfig } from '../../core/index.ts';
import { createHearth } from '../../gateway/index.ts';

const config = loadConfig(process.env);
const hearth = await createHearth(config, { logger: false });
const url = await hearth.app.listen({ port: config.port, host: config.host });
const profileDir = process.argv[2];
if (profileDir) {
  let session: Session | undefined;
  let count = 0;
  process.on('SIGUSR2', () => {
    void (async () => {
      if (!session) {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        console.log('profiling');
        return;
      }
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      const file = path.join(profileDir, `hearth-main-${++count}.cpuprofile`);
      await fs.mkdir(profileDir, { recursive: true });
      await fs.writeFile(file, JSON.stringify(profile));
      console.log(`profile ${file}`);
    })();
  });
}
console.log(`listening ${url}`);
const stop = () =>
  void hearth.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
