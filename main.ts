// Hearth's entry point: read the config, build the components, listen, and shut down cleanly on a signal.
import { ConfigError, loadConfig, type Config } from './core/index.ts';
import { createHearth } from './gateway/hearth.ts';

let config: Readonly<Config>;
try {
  config = loadConfig(process.env);
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`hearth: invalid configuration: ${e.message}`);
    process.exit(1);
  }
  throw e;
}

const hearth = await createHearth(config, { logger: true }).catch((e: Error) => {
  console.error(`hearth: start-up failed: ${e.message}`);
  process.exit(1);
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1); // a second signal forces the exit
    stopping = true;
    hearth.app.log.info(`${signal}: shutting down`);
    hearth.close().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}

await hearth.app.listen({ port: config.port, host: config.host });
