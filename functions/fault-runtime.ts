// TEST ONLY: a runtime whose runs hang, throw or kill their worker on demand, so the executor's
// timeout and crash handling can be tested with real threads. The modes are listed in protocol.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { hearthError, type Tensor, type TensorSpec } from '../core/index.ts';
import type { LoadOptions, Runtime, Session } from './runtime.ts';
import { checkOutputNames, validateInputs } from '../protocol/index.ts';

const SPECS: TensorSpec[] = [
  { name: 'mode', datatype: 'INT32', shape: [-1] },
  { name: 'payload', datatype: 'FP32', shape: [-1] },
];

class FaultSession implements Session {
  readonly inputs = SPECS.map((s) => ({ ...s, shape: [...s.shape] }));
  readonly outputs = SPECS.map((s) => ({ ...s, shape: [...s.shape] }));
  /** Memory held for the session's life (LoadOptions.fault.loadAllocMb). */
  readonly ballast: Buffer | undefined;

  constructor(ballastMb = 0) {
    // Filled with ones: every page is written and counts in RSS (zero pages fresh from mmap would not).
    this.ballast = ballastMb > 0 ? Buffer.alloc(ballastMb * 1024 * 1024, 1) : undefined;
  }

  async run(feeds: Tensor[], outputNames?: string[]): Promise<Tensor[]> {
    validateInputs(this, feeds);
    const fetches = checkOutputNames(this, outputNames);
    const mode = (feeds.find((t) => t.name === 'mode')!.data as Int32Array)[0] ?? 0;
    switch (mode) {
      case 0:
        break;
      case 1:
        await new Promise<never>(() => {});
        break;
      case 2:
        for (;;) {
          /* blocks the thread until terminate() */
        }
      case 3:
        throw new Error('fault runtime: deliberate throw (mode 3)');
      case 4:
        process.exit(3);
      // falls through: unreachable, process.exit ends the worker
      case 5:
        setTimeout(() => {
          throw new Error('fault runtime: deliberate uncaught exception (mode 5)');
        }, 0);
        await new Promise<never>(() => {});
        break;
      default:
        if (mode >= 1000) await sleep(mode - 1000);
        else throw hearthError('INVALID_TENSOR', `input "mode": unknown fault mode ${mode}`);
    }
    return fetches.map((n) => {
      const t = feeds.find((f) => f.name === n)!;
      return { name: n, datatype: t.datatype, shape: [...t.shape], data: t.data };
    });
  }

  async dispose(): Promise<void> {}
}

export class FaultRuntime implements Runtime {
  readonly name = 'fault';

  async load(opts: LoadOptions): Promise<Session> {
    const f = opts.fault ?? {};
    if (f.loadDelayMs) await sleep(f.loadDelayMs);
    switch (f.load ?? 'ok') {
      case 'throw':
        throw hearthError('MODEL_INVALID', 'fault runtime: deliberate load failure');
      case 'hang':
        await new Promise<never>(() => {});
        break;
      case 'exit':
        process.exit(4);
    }
    return new FaultSession(f.loadAllocMb);
  }
}
