import { describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../model-store/index.ts';
import { startS3rver } from '../helpers/s3rver.ts';
import { objectStoreConformance } from './object-store-conformance.ts';

objectStoreConformance(
  's3 (s3rver)',
  async () => {
    const s3 = await startS3rver();
    // A bucket that does not exist yet: init() must create it.
    const store = new S3ObjectStore({ ...s3, bucket: 'conformance', partSizeBytes: 16 * 1024 * 1024 });
    return { store, cleanup: () => s3.close() };
  },
  { largeBytes: 70 * 1024 * 1024 },
);

describe('S3ObjectStore specifics', () => {
  it('maps an unreachable endpoint to STORE_UNAVAILABLE naming the endpoint', async () => {
    const store = new S3ObjectStore({ endpoint: 'http://127.0.0.1:1', accessKey: 'k', secretKey: 's', bucket: 'b-x', region: 'us-east-1' });
    const err = await store.init().then(
      () => undefined,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(String(err.message)).toContain('127.0.0.1:1');
    await store.close();
  });

  it('refuses a part size below the S3 minimum', () => {
    expect(
      () =>
        new S3ObjectStore({
          endpoint: 'http://127.0.0.1:9',
          accessKey: 'k',
          secretKey: 's',
          bucket: 'b-x',
          region: 'us-east-1',
          partSizeBytes: 1024,
        }),
    ).toThrow(/partSizeBytes/);
  });
});

describe('S3ObjectStore multipart failure', () => {
  it('leaves no object when the body fails after several parts went up (abort refused by the server is tolerated)', async () => {
    const { Readable } = await import('node:stream');
    const s3 = await startS3rver();
    const store = new S3ObjectStore({ ...s3, bucket: 'mp-fail', partSizeBytes: 5 * 1024 * 1024 });
    try {
      await store.init();
      let n = 0;
      const failing = new Readable({
        read() {
          if (++n <= 12) this.push(Buffer.alloc(1024 * 1024, n));
          else this.destroy(new Error('client went away'));
        },
      });
      await expect(store.put('models/x/1/model.onnx', failing)).rejects.toThrow('client went away');
      expect(n).toBeGreaterThan(10); // two 5 MiB parts were uploaded before the failure
      expect(await store.list('')).toEqual([]);
      expect(await store.stat('models/x/1/model.onnx')).toBeUndefined();
    } finally {
      await store.close();
      await s3.close();
    }
  });
});
