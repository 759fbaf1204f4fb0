// HearthMetrics from observer events: counters, histograms, the pending gauge, failure reasons, one registry per app.
import { describe, expect, it } from 'vitest';
import { HearthMetrics } from '../../gateway/ops-metrics.ts';

function value(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const done = (over: Record<string, unknown> = {}) => ({
  name: 'm',
  version: 3,
  ok: true,
  queueMs: 2,
  computeMs: 30,
  billedMs: 15,
  memoryMb: 256,
  batchSize: 2,
  coldStart: false,
  at: 0,
  ...over,
});

describe('HearthMetrics', () => {
  it('counts successes, failures by reason, runs, pending requests and cold starts', async () => {
    const m = new HearthMetrics();
    const o = m.observer;
    for (let i = 0; i < 5; i++) o.onRequestQueued!({ name: 'm', version: 3, at: 0 });
    let text = (await m.scrape()).body;
    expect(value(text, 'hearth_inference_pending_requests', 'model="m",version="3"')).toBe(5);
    o.onRun!({ name: 'm', version: 3, batchSize: 2, computeMs: 30, at: 0 });
    // One cold start whose first batch run served two requests: both flagged, counted once.
    o.onRequestDone!(done({ coldStart: true, coldStartMs: 1500 }));
    o.onRequestDone!(done({ coldStart: true, coldStartMs: 1500 }));
    // A second cold start (another instance) ending at the same moment but with another duration.
    o.onRequestDone!(done({ coldStart: true, coldStartMs: 900, ok: false, reason: 'BACKEND' }));
    o.onRequestDone!(done({ ok: false, reason: 'REJECTED', billedMs: 0, computeMs: 0 }));
    o.onRequestDone!(done({ ok: false, reason: 'BACKEND' }));
    text = (await m.scrape()).body;
    const l = 'model="m",version="3"';
    expect(value(text, 'hearth_inference_request_success_total', l)).toBe(2);
    expect(value(text, 'hearth_inference_count_total', l)).toBe(2);
    expect(value(text, 'hearth_inference_exec_count_total', l)).toBe(1); // count / exec = mean batch size 2
    expect(value(text, 'hearth_inference_request_failure_total', `${l},reason="REJECTED"`)).toBe(1);
    expect(value(text, 'hearth_inference_request_failure_total', `${l},reason="BACKEND"`)).toBe(2);
    expect(value(text, 'hearth_inference_pending_requests', l)).toBe(0);
    expect(value(text, 'hearth_cold_starts_total', l)).toBe(2);
    expect(value(text, 'hearth_cold_start_duration_seconds_count', l)).toBe(2);
    expect(value(text, 'hearth_cold_start_duration_seconds_sum', l)).toBeCloseTo(2.4, 12);
    expect(value(text, 'hearth_inference_queue_duration_seconds_count', l)).toBe(2);
    expect(value(text, 'hearth_inference_compute_duration_seconds_sum', l)).toBeCloseTo(0.06, 12);
  });

  it('keeps one registry per instance, so two apps in one process do not collide', async () => {
    const a = new HearthMetrics();
    const b = new HearthMetrics();
    a.observer.onRequestDone!(done());
    expect(value((await a.scrape()).body, 'hearth_inference_request_success_total', 'model="m",version="3"')).toBe(1);
    expect(value((await b.scrape()).body, 'hearth_inference_request_success_total', 'model="m",version="3"')).toBeUndefined();
    expect((await a.scrape()).contentType).toMatch(/^text\/plain/);
  });
});
