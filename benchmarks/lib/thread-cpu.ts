// CPU time of one process, split into its main thread and all other threads (worker threads, libuv pool,
// onnxruntime's own threads), read from /proc. Linux only; elsewhere the reading is undefined. Used to show
// where a server's cores go during a measured window: a saturated main thread next to idle workers calls
// for different work than two saturated cores.
import fs from 'node:fs/promises';

export interface ThreadCpu {
  /** Seconds of CPU (user + system) used by the main thread (tid === pid). */
  main: number;
  /** Seconds used by every other thread that is alive at the time of reading. */
  others: number;
}

const TICKS_PER_SEC = 100; // USER_HZ; 100 on every Linux build Node supports

async function ticks(file: string): Promise<number> {
  const text = await fs.readFile(file, 'utf8');
  // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export async function readThreadCpu(pid: number): Promise<ThreadCpu | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const tids = await fs.readdir(`/proc/${pid}/task`);
    let main = 0;
    let others = 0;
    for (const tid of tids) {
      const t = await ticks(`/proc/${pid}/task/${tid}/stat`).catch(() => 0); // a thread may exit mid-read
      if (Number(tid) === pid) main += t;
      else others += t;
    }
    return { main: main / TICKS_PER_SEC, others: others / TICKS_PER_SEC };
  } catch {
    return undefined;
  }
}

/** Percent of one core used by each part between two readings taken `seconds` apart. */
export function cpuShare(
  before: ThreadCpu | undefined,
  after: ThreadCpu | undefined,
  seconds: number,
): { mainPct: number; othersPct: number } | undefined {
  if (!before || !after || seconds <= 0) return undefined;
  return {
    mainPct: ((after.main - before.main) / seconds) * 100,
    // Threads that exited in the window drop out of `others`; clamp so a retired worker cannot go negative.
    othersPct: (Math.max(0, after.others - before.others) / seconds) * 100,
  };
}
