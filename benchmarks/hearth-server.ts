// Starts a whole Hearth in its own process for the benchmarks, the way main.ts does but with request logging
// off (a log line per request would be measured too). Prints "listening <url>" once it accepts requests.
//   DATA_DIR=/tmp/x PORT=0 tsx benchmarks/hearth-server.ts
import { loadConfig } from '../core/index.ts';
import { createHearth } from '../gateway/hearth.ts';

const config = loadConfig(process.env);
const hearth = await createHearth(config, { logger: false });
const url = await hearth.app.listen({ port: config.port, host: config.host });
console.log(`listening ${url}`);
const stop = () => void hearth.close().then(() => process.exit(0), () => process.exit(1));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
