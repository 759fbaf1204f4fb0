// The last line of defence: an exception nothing caught, or a promise rejection nothing handled, is logged at
// fatal, the node is closed within a bound, and the process exits 1, so a supervisor restarts a clean node
// instead of one in an unknown state (or one that died with nothing in its log).

export interface FatalHandlerOptions {
  /** The node's logger (pino's fatal writes synchronously). */
  log: { fatal(obj: object, msg: string): void };
  /** Closes the node (HTTP server, executor, jobs...). */
  close: () => Promise<void>;
  /** Longest the close may take before the exit goes ahead anyway. */
  closeTimeoutMs: number;
  exit: (code: number) => void;
}

export type FatalKind = 'uncaughtException' | 'unhandledRejection';

/** One handler for both events; the first fatal error closes and exits, any later one exits at once. */
export function fatalHandler(opts: FatalHandlerOptions): (kind: FatalKind, err: unknown) => Promise<void> {
  let handling = false;
  return async (kind, err) => {
    opts.log.fatal({ err, kind }, `${kind}: ${describe(err)}; closing the node and exiting`);
    if (handling) return opts.exit(1);
    handling = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        opts.log.fatal({ closeTimeoutMs: opts.closeTimeoutMs }, 'closing the node took too long; exiting anyway');
        resolve();
      }, opts.closeTimeoutMs);
    });
    try {
      await Promise.race([
        opts.close().catch((e: unknown) => opts.log.fatal({ err: e }, `closing the node failed: ${describe(e)}`)),
        timedOut,
      ]);
    } finally {
      clearTimeout(timer);
    }
    opts.exit(1);
  };
}

/** Installs the handler on `proc` (the process, or an emitter in tests). */
export function installFatalHandlers(proc: Pick<NodeJS.EventEmitter, 'on'>, opts: FatalHandlerOptions): void {
  const handle = fatalHandler(opts);
  proc.on('uncaughtException', (err: unknown) => void handle('uncaughtException', err));
  proc.on('unhandledRejection', (reason: unknown) => void handle('unhandledRejection', reason));
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
