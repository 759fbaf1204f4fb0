// The body reader of buffered routes (gateway/request-body.ts), on a bare fastify with its parsers: the limit,
// the node's budget of bodies in flight (taken as bytes arrive, given back when the answer is sent), and
// streamed decompression counted in inflated bytes.
import zlib from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { isHearthError } from '../../core/index.ts';
import { BodyBudget, readBody, registerBufferedParsers, trackBodyResponses } from '../../gateway/request-body.ts';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

function app(maxBytes: number, budgetBytes: number) {
  const budget = new BodyBudget(budgetBytes);
  const f = Fastify();
  apps.push(f);
  f.setErrorHandler((err, _req, reply) => {
    if (isHearthError(err)) {
      if (err.headers) reply.headers(err.headers);
      return reply.code(err.statusCode).send(err.toJSON());
    }
    reply.code((err as { statusCode?: number }).statusCode ?? 500).send({ error: String(err), code: 'OTHER' });
  });
  trackBodyResponses(f);
  registerBufferedParsers(f, { maxBytes, budget });
  // What a handler sees while its body is held, and the body size.
  f.post('/json', async (req) => ({ held: budget.heldBytes, body: req.body }));
  f.register(async (v2) => {
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', (req, payload, done) => readBody(req, payload as never, { maxBytes, budget, inflate: true }, done));
    v2.post('/raw', async (req) => ({ held: budget.heldBytes, bytes: (req.body as Buffer).length }));
  });
  return { f, budget };
}

describe('readBody', () => {
  it('holds a body from its first byte until the answer is sent, then gives it back', async () => {
    const { f, budget } = app(1024, 4096);
    const body = JSON.stringify({ a: 'x'.repeat(100) });
    const res = await f.inject({ method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ held: body.length, body: { a: 'x'.repeat(100) } });
    await new Promise((r) => setImmediate(r));
    expect(budget.heldBytes).toBe(0);
  });

  it('a declared Content-Length over the limit -> 413 PAYLOAD_TOO_LARGE naming MAX_REQUEST_BYTES; a chunked one too', async () => {
    const { f, budget } = app(1024, 1 << 20);
    const declared = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(2000),
    });
    expect(declared.statusCode).toBe(413);
    expect(declared.json()).toEqual({ code: 'PAYLOAD_TOO_LARGE', error: 'the request body is larger than MAX_REQUEST_BYTES (1024 bytes)' });
    const { Readable } = await import('node:stream');
    const chunked = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Readable.from([Buffer.alloc(600), Buffer.alloc(600)]),
    });
    expect(chunked.statusCode).toBe(413);
    expect(budget.heldBytes).toBe(0);
  });

  it('past the budget of bodies in flight -> 503 OVERLOADED with Retry-After, nothing kept', async () => {
    const { f, budget } = app(4096, 1000);
    expect(budget.take(900)).toBe(true); // another request holds most of it
    const res = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(200),
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('OVERLOADED');
    expect(res.json().error).toMatch(/MAX_BODY_BYTES_IN_FLIGHT \(1000 bytes\)/);
    expect(res.headers['retry-after']).toBe('1');
    expect(budget.heldBytes).toBe(900);
    budget.give(900);
    const ok = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(200),
    });
    expect(ok.json()).toEqual({ held: 200, bytes: 200 });
  });

  it('inflates gzip and deflate as they stream, counting inflated bytes against the limit', async () => {
    const { f, budget } = app(64 * 1024, 1 << 20);
    const plain = Buffer.alloc(50_000, 7);
    for (const [enc, z] of [
      ['gzip', zlib.gzipSync],
      ['deflate', zlib.deflateSync],
    ] as const) {
      const ok = await f.inject({
        method: 'POST',
        url: '/raw',
        headers: { 'content-type': 'application/octet-stream', 'content-encoding': enc },
        payload: z(plain),
      });
      expect(ok.json()).toEqual({ held: 50_000, bytes: 50_000 });
      const bomb = await f.inject({
        method: 'POST',
        url: '/raw',
        headers: { 'content-type': 'application/octet-stream', 'content-encoding': enc },
        payload: z(Buffer.alloc(10 << 20)),
      });
      expect(bomb.statusCode).toBe(413);
      expect(bomb.json().error).toBe(`the decompressed ${enc} body is larger than MAX_REQUEST_BYTES (65536 bytes)`);
    }
    await new Promise((r) => setImmediate(r));
    expect(budget.heldBytes).toBe(0);
  });

  it('a corrupt gzip body -> 400 INVALID_REQUEST; an unknown encoding -> 415 before reading', async () => {
    const { f, budget } = app(64 * 1024, 1 << 20);
    const bad = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: 'not gzip at all',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_REQUEST', error: expect.stringMatching(/gzip body could not be decompressed/) });
    const br = await f.inject({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
      payload: 'x',
    });
    expect(br.statusCode).toBe(415);
    expect(br.json().code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(budget.heldBytes).toBe(0);
  });

  it('JSON keeps fastify semantics: prototype poisoning refused, an empty body refused', async () => {
    const { f } = app(1024, 4096);
    const proto = await f.inject({
      method: 'POST',
      url: '/json',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"x":1}}',
    });
    expect(proto.statusCode).toBe(400);
    const empty = await f.inject({ method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, payload: '' });
    expect(empty.statusCode).toBe(400);
  });
});

describe('BodyBudget', () => {
  it('takes only what fits and gives back', () => {
    const b = new BodyBudget(10);
    expect(b.take(6)).toBe(true);
    expect(b.fits(4)).toBe(true);
    expect(b.fits(5)).toBe(false);
    expect(b.take(5)).toBe(false);
    expect(b.heldBytes).toBe(6);
    b.give(6);
    expect(b.heldBytes).toBe(0);
  });
});
