// The process-level handler for uncaught exceptions and unhandled rejections (main.ts installs it on `process`):
// tested as a unit on an emitter, with an injected logger, close and exit. A real process is not provoked into
// one: every crash found from outside is fixed where it happens, and main.ts has no test-only hook to fake one.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { installFatalHandlers, type FatalHandlerOptions } from '../../gateway/fatal-errors.ts';

function harness(close: () => Promise<void>, closeTimeoutMs = 1000) {
  const logs: { obj: Record<string, unknown>; msg: string }[] = [];
  const calls: string[] = [];
  let exited!: (code: number) => void;
  const exit = new Promise<number>((r) => (exited = r));
  const opts: FatalHandlerOptions = {
    log: { fatal: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, msg }) },
    close: async () => {
      calls.push('close');
      await close();
      calls.push('closed');
    },
    closeTimeoutMs,
    exit: (code) => {
      calls.push(`exit ${code}`);
      exited(code);
    },
  };
  const proc = new EventEmitter();
  installFatalHandlers(proc, opts);
  return { proc, logs, calls, exit };
}

describe('fatal error handler', () => {
  it('an uncaught exception is logged at fatal with the error, the node is closed, then the process exits 1', async () => {
    const h = harness(async () => {});
    const err = new Error('boom');
    h.proc.emit('uncaughtException', err);
    expect(await h.exit).toBe(1);
    expect(h.calls).toEqual(['close', 'closed', 'exit 1']);
    expect(h.logs[0].obj).toMatchObject({ err, kind: 'uncaughtException' });
    expect(h.logs[0].msg).toMatch(/uncaughtException: boom/);
  });

  it('an unhandled rejection (even of a non-Error) is handled the same way', async () => {
    const h = harness(async () => {});
    h.proc.emit('unhandledRejection', 'just a string', Promise.resolve());
    expect(await h.exit).toBe(1);
    expect(h.calls).toEqual(['close', 'closed', 'exit 1']);
    expect(h.logs[0].msg).toMatch(/unhandledRejection: just a string/);
  });

  it('a close that hangs does not hold the exit past closeTimeoutMs', async () => {
    const h = harness(() => new Promise<void>(() => {}), 50);
    h.proc.emit('uncaughtException', new Error('boom'));
    expect(await h.exit).toBe(1);
    expect(h.calls).toEqual(['close', 'exit 1']);
    expect(h.logs.map((l) => l.msg).join('\n')).toMatch(/took too long/);
  });

  it('a close that fails is logged and the exit still happens', async () => {
    const h = harness(async () => {
      throw new Error('close failed');
    });
    h.proc.emit('uncaughtException', new Error('boom'));
    expect(await h.exit).toBe(1);
    expect(h.logs.map((l) => l.msg).join('\n')).toMatch(/closing the node failed: close failed/);
  });

  it('a second fatal error during the close exits at once', async () => {
    let release!: () => void;
    const h = harness(() => new Promise<void>((r) => (release = r)), 10_000);
    h.proc.emit('uncaughtException', new Error('first'));
    h.proc.emit('unhandledRejection', new Error('second'));
    expect(await h.exit).toBe(1);
    expect(h.calls).toEqual(['close', 'exit 1']);
    expect(h.logs.map((l) => l.msg)).toEqual([expect.stringMatching(/first/), expect.stringMatching(/second/)]);
    release();
  });
});
