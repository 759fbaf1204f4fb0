// The dashboard in headless Chromium (Debian's chromium, driven by playwright-core) against a real Hearth on
// loopback with the real silero VAD model and a private Redis for jobs: live instance counts after an inference,
// the keep-alive histogram after scripted calls, a config edit refused then saved, a job's progress bar, a
// drag-and-drop upload, the costs page, phone width, dark theme, keyboard reach, and AUTH on (key prompt, then
// data). No console errors on any page; screenshots go to test-artifacts/ for a person to look at.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { startTestHearth, TEST_ADMIN_KEY, type TestHearth } from '../helpers/app.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`test/ui/dashboard.slow.test.ts: skipped, no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`);

/** Rows of the job the jobs page follows. */
const ROWS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One silero request body in JSON: a frame of 512 samples, sr 16000, zero state. */
function sileroJson(seed = 0) {
  return {
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: Array.from({ length: 512 }, (_, i) => Math.sin((i + seed) / 9) / 4) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
    ],
  };
}

/** Console errors and page errors of one page. Failed loads the test itself caused are listed by the test. */
function watch(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  return errors;
}

// One browser for the file; each test area opens its own contexts.
let browser: Browser;
beforeAll(async () => {
  if (!haveChromium) return;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

describe.skipIf(!haveChromium)('the dashboard in headless Chromium', () => {
  let redis: TestRedis;
  let h: TestHearth;
  let base: string;
  let ctx: BrowserContext;
  let page: Page;
  let errors: string[];
  /** Console lines the test caused on purpose (a refused config), each expected exactly. */
  const expectedErrors: RegExp[] = [];

  const call = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const infer = async (seed = 0) => {
    const r = await call('POST', '/v2/models/vad/infer', sileroJson(seed));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  const shot = (p: Page, name: string) => p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    redis = await startTestRedis({ useEnv: false });
    h = await startTestHearth({
      env: { AUTOSCALER_TICK_MS: '250' },
      overrides: { jobs: { redisUrl: redis.url, prefix: 'uitest' } },
    });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    const up = await fetch(`${base}/v1/models/vad`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(sileroBytes()),
    });
    expect(up.status, await up.text()).toBe(201);
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    page = await ctx.newPage();
    errors = watch(page);
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await redis?.close();
  });

  it('overview: lists the uploaded model, then live instance counts after an inference (a cold start, then warm)', async () => {
    await page.goto(`${base}/`);
    await page.getByTestId('stream').filter({ hasText: 'live' }).waitFor();
    await page.getByTestId('model-vad').waitFor();
    expect(await page.getByTestId('model-vad').getByTestId('instances').innerText()).toContain('0 / 0 / 0');
    await infer(1);
    const row = page.getByTestId('pool-vad-1');
    await row.getByTestId('cold-starts').filter({ hasText: /^1$/ }).waitFor();
    // Warm: an idle instance held after the first call, and a second call served without another cold start.
    await row
      .getByTestId('instances')
      .filter({ hasText: /^0 \/ 1 \/ 0/ })
      .waitFor();
    await infer(2);
    await row.getByTestId('requests').filter({ hasText: /^2$/ }).waitFor();
    expect(await row.getByTestId('cold-starts').innerText()).toBe('1');
    // A live figure keeps its size while it updates.
    const spark = row.locator('.spark').first();
    const before = await spark.boundingBox();
    await infer(3);
    await row.getByTestId('requests').filter({ hasText: /^3$/ }).waitFor();
    expect(await spark.boundingBox()).toEqual(before);
    await shot(page, 'overview-1280');
  });

  it('model page: draws the keep-alive histogram with its windows for a model on the histogram policy after scripted calls', async () => {
    const put = await call('PUT', '/v1/models/vad/config', {
      keepAlive: { kind: 'histogram', binMs: 100, rangeMs: 4000, minSamples: 3, prewarmPercentile: 5, keepAlivePercentile: 99 },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // Idle gaps of about 300 ms: they cluster in a few bins.
    for (let i = 0; i < 6; i++) {
      await infer(10 + i);
      await sleep(300);
    }
    await page.goto(`${base}/#/models/vad`);
    await page.getByTestId('manifest').waitFor();
    const view = (await call('GET', '/v1/models/vad/keep-alive')).body;
    const api = view.pools[0];
    // Five gaps of about 300 ms (the one before the first call is longer than rangeMs).
    expect(api.histogram.samples).toBeGreaterThanOrEqual(5);
    await page.getByTestId('ka-v1').waitFor();
    // Every idle time the API counts in range is a bar's count on the page.
    await expect
      .poll(async () => page.getByTestId('bin').evaluateAll((els) => els.reduce((a, e) => a + Number(e.getAttribute('data-count')), 0)))
      .toBe((await call('GET', '/v1/models/vad/keep-alive')).body.pools[0].histogram.samples);
    expect(await page.getByTestId('keep-window').count()).toBe(1);
    expect(await page.getByTestId('ka-policy').innerText()).toMatch(/^histogram/);
    expect(await page.getByTestId('ka-decision').innerText()).toContain('idle times in range');
    // The inputs and outputs of the manifest are shown.
    const manifest = await page.getByTestId('manifest').innerText();
    for (const n of ['input', 'sr', 'h', 'c', 'output', 'hn', 'cn']) expect(manifest).toContain(n);
    await page.getByText('Cold against warm').waitFor();
    await expect.poll(() => page.getByTestId('coldwarm-summary').innerText()).toMatch(/^\d+ cold .* \d+ warm/);
    await shot(page, 'model-1280');
  });

  it('model page: "try it" sends one inference with generated inputs of the manifest shapes', async () => {
    await page.goto(`${base}/#/models/vad`);
    await page.getByTestId('try-send').click();
    await expect.poll(() => page.getByTestId('try-result').innerText(), { timeout: 20_000 }).toMatch(/output \[1, 1\]/);
  });

  it('model page: an invalid config shows the server error, a valid one is saved (read back over the API)', async () => {
    const bad = { maxInstances: -1 };
    const refused = await call('PUT', '/v1/models/vad/config', bad);
    expect(refused.status).toBe(400);
    await page.goto(`${base}/#/models/vad`);
    const box = page.getByTestId('config');
    await expect.poll(() => box.inputValue()).toContain('keepAlive');
    await box.fill(JSON.stringify(bad));
    expectedErrors.push(/status of 400/);
    await page.getByTestId('config-save').click();
    const shown = page.getByTestId('error');
    await shown.waitFor();
    expect(await shown.innerText()).toContain(refused.body.error);
    expect(await shown.innerText()).toContain(refused.body.code);
    await shot(page, 'model-config-error');
    await box.fill(JSON.stringify({ keepAlive: { kind: 'fixed', idleMs: 45_000 } }));
    await page.getByTestId('config-save').click();
    await page.getByTestId('config-note').filter({ hasText: 'Saved' }).waitFor();
    expect(await page.getByTestId('error').count()).toBe(0);
    expect((await call('GET', '/v1/models/vad/config')).body.keepAlive).toEqual({ kind: 'fixed', idleMs: 45_000 });
    expect(await box.inputValue()).toContain('45000');
  });

  it('jobs: a job started over the API shows its progress bar advancing to completion', async () => {
    await page.goto(`${base}/#/jobs`);
    await page.getByText('No jobs.').waitFor();
    // Enough rows (zeros keep the body small) that the job runs for several of the page's 1 s updates.
    const row = sileroJson(0);
    row.inputs[0].data = new Array(512).fill(0);
    const rows = new Array(ROWS).fill(row);
    const made = await call('POST', '/v1/jobs', { model: 'vad', rows, chunkSize: 100 });
    expect(made.status, JSON.stringify(made.body)).toBe(202);
    const bar = page.getByTestId(`job-${made.body.id}`).getByTestId('job-progress');
    await bar.waitFor();
    const seen = new Set<number>();
    const end = Date.now() + 60_000;
    for (;;) {
      const v = Number(await bar.getAttribute('value'));
      seen.add(v);
      if (v === ROWS && (await page.getByTestId(`job-${made.body.id}`).getByTestId('job-state').innerText()) === 'completed') break;
      if (Date.now() > end) throw new Error(`the job did not complete on the page; values seen ${[...seen].join(', ')}`);
      await sleep(100);
    }
    expect(Number(await bar.getAttribute('max'))).toBe(ROWS);
    // Advancing: the bar showed the job short of done before it showed it done.
    expect(
      [...seen].some((v) => v > 0 && v < ROWS),
      [...seen].join(', '),
    ).toBe(true);
    console.log(`job progress values seen on the page: ${[...seen].join(', ')}`);
    expect(await page.getByTestId(`job-${made.body.id}`).getByText('Results').count()).toBe(1);
    await shot(page, 'jobs-1280');
  });

  it('upload: a model dropped on the page creates a version, with the bar at the whole size', async () => {
    await page.goto(`${base}/#/upload`);
    const bytes = sileroBytes();
    const dt = await page.evaluateHandle((b64) => {
      const bin = atob(b64);
      const arr = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
      const d = new DataTransfer();
      d.items.add(new File([arr], 'Dropped VAD.onnx', { type: 'application/octet-stream' }));
      return d;
    }, bytes.toString('base64'));
    await page.getByTestId('drop').dispatchEvent('drop', { dataTransfer: dt });
    await page.getByTestId('files').filter({ hasText: 'Dropped VAD.onnx' }).waitFor();
    expect(await page.locator('#model-name').inputValue()).toBe('dropped-vad');
    await page.getByTestId('upload-send').click();
    await page.getByTestId('upload-version').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('upload-version').innerText()).toBe('1');
    expect(Number(await page.getByTestId('upload-progress').getAttribute('value'))).toBe(bytes.length);
    const model = (await call('GET', '/v1/models/dropped-vad')).body;
    expect(model.versions).toEqual([1]);
    await shot(page, 'upload-1280');
  });

  it('costs: stacked bars and a table per model version with the always-on comparison', async () => {
    await page.goto(`${base}/#/costs`);
    await page.getByTestId('costs-table').waitFor();
    expect(await page.getByTestId('costs-table').innerText()).toContain('vad v1');
    expect(await page.getByTestId('bar-part').count()).toBeGreaterThanOrEqual(4);
    expect(await page.getByTestId('costs-total').innerText()).toMatch(/saved/);
    await shot(page, 'costs-1280');
  });

  it('keyboard: the navigation and the drop zone are reached with Tab', async () => {
    await page.goto(`${base}/#/upload`);
    const reached = new Set<string>();
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      reached.add(
        await page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.textContent?.trim() ?? ''),
      );
    }
    for (const want of ['Overview', 'Costs', 'Jobs', 'Upload', 'drop']) expect([...reached]).toContain(want);
  });

  it('phone width and dark theme: no page-wide horizontal scroll at 390 px; dark colours follow the system', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', deviceScaleFactor: 1 });
    const p = await phone.newPage();
    const errs = watch(p);
    for (const [hash, name] of [
      ['', 'overview'],
      ['models/vad', 'model'],
      ['costs', 'costs'],
      ['jobs', 'jobs'],
    ]) {
      await p.goto(`${base}/#/${hash}`);
      await p.getByTestId('stream').filter({ hasText: 'live' }).waitFor();
      await p.locator('h1').first().waitFor();
      await sleep(300);
      expect(await p.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
      await shot(p, `${name}-390-dark`);
    }
    const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const lightBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).not.toBe(lightBg);
    await phone.close();
    expect(errs).toEqual([]);
  });

  it('no console errors on any page (apart from the refused config the test sent on purpose)', () => {
    const unexpected = errors.filter((e) => !expectedErrors.some((re) => re.test(e)));
    expect(unexpected).toEqual([]);
    expect(errors.length - unexpected.length).toBe(expectedErrors.length);
  });
});

describe.skipIf(!haveChromium)('the dashboard with AUTH on', () => {
  let h: TestHearth;
  let base: string;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    [browser, h] = await Promise.all([
      chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      }),
      startTestHearth({ authScopes: ['models:read'] }),
    ]);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    const up = await fetch(`${base}/v1/models/vad`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${TEST_ADMIN_KEY}` },
      body: new Uint8Array(sileroBytes()),
    });
    expect(up.status, await up.text()).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('asks for a key, keeps it in sessionStorage only, sends it as a Bearer header (never in a URL), then shows the data', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const errs = watch(page);
    const urls: string[] = [];
    const auths: string[] = [];
    page.on('request', (r) => {
      urls.push(r.url());
      if (r.url().includes('/v1/')) auths.push(r.headers().authorization ?? '');
    });
    await page.goto(`${base}/`);
    await page.locator('#api-key').waitFor();
    await shot(page, 'auth-prompt');
    await page.locator('#api-key').fill(h.authKey!);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.getByTestId('model-vad').waitFor();
    await page.getByTestId('stream').filter({ hasText: 'live' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('hearth.apiKey'))).toBe(h.authKey);
    expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);
    expect(urls.some((u) => u.includes(h.authKey!) || u.includes('hk_'))).toBe(false);
    expect(auths.length).toBeGreaterThanOrEqual(2);
    expect(auths.every((a) => a === `Bearer ${h.authKey}`)).toBe(true);
    await shot(page, 'auth-overview');
    // A new tab of a new session asks again.
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(`${base}/`);
    await p2.locator('#api-key').waitFor();
    await other.close();
    await ctx.close();
    expect(errs).toEqual([]);
  });

  it('a key limited to some models sees its models and is told the node-wide live stream is refused', async () => {
    const made = await fetch(`${base}/v1/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_KEY}` },
      body: JSON.stringify({ name: 'vad reader', scopes: ['models:read'], models: ['vad'] }),
    });
    expect(made.status).toBe(201);
    const key = ((await made.json()) as { key: string }).key;
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const errs = watch(page);
    await page.goto(`${base}/`);
    await page.locator('#api-key').fill(key);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.getByTestId('model-vad').waitFor();
    await page.getByText('The live event stream was refused').waitFor();
    expect(await page.getByTestId('stream').innerText()).toBe('stopped');
    await ctx.close();
    // The one refusal, logged by the browser as a failed load.
    expect(errs.length).toBe(1);
    expect(errs[0]).toMatch(/status of 403/);
  });

  async function shot(p: Page, name: string) {
    await p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }
});
