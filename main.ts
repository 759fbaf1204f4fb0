// Hearth's entry point: read the config, build the components, listen, and shut down cleanly on a signal.
import fs from 'node:fs';
import { ConfigError, loadConfig, type Config } from './core/index.ts';
import { createHearth, installFatalHandlers } from './gateway/index.ts';

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

// Requests in flight get SHUTDOWN_TIMEOUT_MS, then their connections are closed (hearth.close); the components
// get as long again to close. Past that, or on a fatal error, the process exits 1.
const closeTimeoutMs = 2 * config.limits.shutdownTimeoutMs + 1000;

/**
 * process.exit() joins every worker thread, and one stuck inside onnxruntime never returns: the exit would wait for
 * ever (seen: a node alive at 1-2 cores long after SIGTERM). Nor does process.reallyExit help (it joins them too).
 * With such threads, the process ends itself with SIGKILL, after saying why; the supervisor sees a non-zero end.
 */
function exit(code: number): void {
  const stuck = hearth.busyNativeThreads();
  if (stuck === 0) process.exit(code);
  const why = `${stuck} instance thread(s) stuck in native code (onnxruntime cannot interrupt a run); an exit would wait for them for ever: ending the process with SIGKILL`;
  hearth.log.fatal(why);
  // The logger writes asynchronously and a SIGKILL may come first: the reason also goes to stderr, synchronously.
  fs.writeSync(2, `hearth: ${why}\n`);
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);
}

installFatalHandlers(process, { log: hearth.log, close: () => hearth.close(), closeTimeoutMs, exit });

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) exit(1); // a second signal forces the exit
    stopping = true;
    hearth.log.info(`${signal}: shutting down`);
    setTimeout(() => {
      hearth.log.fatal(`shutdown did not finish within ${closeTimeoutMs} ms; exiting`);
      exit(1);
    }, closeTimeoutMs).unref();
    hearth.close().then(
      () => exit(0),
      (err) => {
        hearth.log.fatal({ err }, 'shutdown failed');
        exit(1);
      },
    );
  });
}

await hearth.app.listen({ port: config.port, host: config.host });
