// Lab, kept for the record: read the --cpu-prof profiles of the 2026-11-26 throughput hunt (docs/performance/lab-notes.md).
// Summarises V8 .cpuprofile files (node --cpu-prof): total sampled time, and the functions with the most self
// time, with their file and line, so a profile can be read in a terminal and quoted in a report.
//   tsx benchmarks/lab/profile-summary.ts <file-or-dir> [--top 25]
import fs from 'node:fs/promises';
import path from 'node:path';
import { arg } from '../lib/args.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function summarise(p: Profile, top: number): string {
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byFn = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    total += us;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    const file = n.callFrame.url
      ? `${n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/work\/main\//, '')}:${n.callFrame.lineNumber + 1}`
      : '';
    const key = `${name}  ${file}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const lines = [
    `sampled ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms, busy ${(((total - idle) / Math.max(1, total)) * 100).toFixed(0)}%`,
  ];
  for (const [key, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`${(us / 1000).toFixed(1).padStart(8)} ms ${((us / Math.max(1, total - idle)) * 100).toFixed(1).padStart(5)}%  ${key}`);
  }
  return lines.join('\n');
}

const target = process.argv[2];
if (!target) {
  console.error('usage: tsx benchmarks/lab/profile-summary.ts <file-or-dir> [--top 25]');
  process.exit(2);
}
const top = Number(arg('top', '25'));
const st = await fs.stat(target);
const files = st.isDirectory()
  ? (await fs.readdir(target))
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort()
      .map((f) => path.join(target, f))
  : [target];
for (const f of files) {
  const p = JSON.parse(await fs.readFile(f, 'utf8')) as Profile;
  console.log(`== ${path.basename(f)}\n${summarise(p, top)}\n`);
}
