// The S3 backend (MinIO or any S3 endpoint) through the `minio` client. Large bodies go up as a multipart
// upload that this class drives itself, one part in memory at a time, so memory stays bounded by the part size
// whatever the body size, and no call depends on ListMultipartUploads (which not every S3 server implements).
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import { hearthError, isHearthError, type HearthError } from '../core/index.ts';
import {
  checkFolderPrefix,
  checkObjectKey,
  ObjectNotFoundError,
  type ObjectChildren,
  type ObjectInfo,
  type ObjectStore,
} from './object-store.ts';

export interface S3StoreOptions {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /** Bytes per multipart part, and the largest body sent in a single PUT. S3 needs at least 5 MiB. Default 16 MiB. */
  partSizeBytes?: number;
  /**
   * Longest any HTTP exchange with the endpoint may go without a byte moving either way, connecting included
   * (STORE_TIMEOUT_MS); then it fails with STORE_UNAVAILABLE. A long transfer that keeps moving is never cut.
   */
  timeoutMs?: number;
}

const MIN_PART = 5 * 1024 * 1024;
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'NoSuchObject']);

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly #client: Client;
  readonly #bucket: string;
  readonly #region: string;
  readonly #partSize: number;
  readonly #agent: http.Agent;
  readonly #endpoint: string;

  constructor(opts: S3StoreOptions) {
    const u = new URL(opts.endpoint);
    const useSSL = u.protocol === 'https:';
    this.#agent = useSSL ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    this.#client = new Client({
      endPoint: u.hostname,
      port: u.port ? Number(u.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      region: opts.region,
      pathStyle: true,
      transportAgent: this.#agent,
      transport: idleTimeoutTransport(useSSL ? https : http, timeoutMs),
    });
    this.#bucket = opts.bucket;
    this.#region = opts.region;
    this.#endpoint = opts.endpoint;
    this.#partSize = opts.partSizeBytes ?? 16 * 1024 * 1024;
    if (!Number.isInteger(this.#partSize) || this.#partSize < MIN_PART) {
      throw new RangeError(`partSizeBytes: expected an integer >= ${MIN_PART}, got ${opts.partSizeBytes}`);
    }
  }

  async init(): Promise<void> {
    const exists = await this.#call('init', '', () => this.#client.bucketExists(this.#bucket));
    if (exists) return;
    try {
      await this.#client.makeBucket(this.#bucket, this.#region);
    } catch (e) {
      // Another node may have created it between the two calls.
      const code = (e as { code?: string }).code;
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw this.#mapError('init', '', e);
    }
  }

  async put(key: string, body: Readable | Buffer, _opts?: { sizeBytes?: number }): Promise<{ sizeBytes: number }> {
    checkObjectKey(key);
    if (Buffer.isBuffer(body) && body.length <= this.#partSize) {
      await this.#call('put', key, () => this.#client.putObject(this.#bucket, key, body, body.length));
      return { sizeBytes: body.length };
    }
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let sizeBytes = 0;
    let uploadId: string | undefined;
    const etags: { part: number; etag: string }[] = [];
    // Parts are assembled in one buffer reused for every part (minio is done with it once uploadPart resolves),
    // so a long upload holds one part, not a trail of garbage parts waiting for the collector.
    let partBuf: Buffer | undefined;
    const take = (n: number): Buffer => {
      const out = n === this.#partSize ? (partBuf ??= Buffer.allocUnsafe(this.#partSize)) : Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const head = pending[0];
        const k = Math.min(head.length, n - off);
        head.copy(out, off, 0, k);
        off += k;
        if (k === head.length) pending.shift();
        else pending[0] = head.subarray(k);
      }
      pendingBytes -= n;
      return out.subarray(0, n);
    };
    const sendPart = async (part: Buffer): Promise<void> => {
      uploadId ??= await this.#call('put', key, () => this.#client.initiateNewMultipartUpload(this.#bucket, key, {}));
      const partNumber = etags.length + 1;
      const res = await this.#call('put', key, () =>
        this.#client.uploadPart({ bucketName: this.#bucket, objectName: key, uploadID: uploadId!, partNumber, headers: {} }, part),
      );
      etags.push({ part: partNumber, etag: res.etag });
    };
    try {
      // for-await pauses the source while a part is in flight: that is the back-pressure bounding memory.
      for await (const chunk of source) {
        const buf: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        pending.push(buf);
        pendingBytes += buf.length;
        sizeBytes += buf.length;
        while (pendingBytes >= this.#partSize) await sendPart(take(this.#partSize));
      }
      if (uploadId === undefined) {
        const whole = take(pendingBytes);
        await this.#call('put', key, () => this.#client.putObject(this.#bucket, key, whole, whole.length));
      } else {
        if (pendingBytes > 0) await sendPart(take(pendingBytes));
        await this.#call('put', key, () => this.#client.completeMultipartUpload(this.#bucket, key, uploadId!, etags));
      }
    } catch (e) {
      pending.length = 0;
      if (uploadId !== undefined) {
        // Some S3 servers refuse AbortMultipartUpload; the upload was never completed, so no object is visible either way.
        await this.#client.abortMultipartUpload(this.#bucket, key, uploadId).catch(() => {});
      }
      throw e;
    }
    return { sizeBytes };
  }

  async get(key: string): Promise<Readable> {
    checkObjectKey(key);
    try {
      return await this.#client.getObject(this.#bucket, key);
    } catch (e) {
      if (NOT_FOUND_CODES.has((e as { code?: string }).code ?? '')) throw new ObjectNotFoundError(key);
      throw this.#mapError('get', key, e);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    try {
      const st = await this.#client.statObject(this.#bucket, key);
      return { key, sizeBytes: st.size, lastModified: st.lastModified };
    } catch (e) {
      if (NOT_FOUND_CODES.has((e as { code?: string }).code ?? '')) return undefined;
      throw this.#mapError('stat', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out = await this.#call(
      'list',
      prefix,
      () =>
        new Promise<ObjectInfo[]>((resolve, reject) => {
          const items: ObjectInfo[] = [];
          const stream = this.#client.listObjectsV2(this.#bucket, prefix, true);
          stream.on('data', (it) => {
            if (it.name) items.push({ key: it.name, sizeBytes: it.size, lastModified: it.lastModified });
          });
          stream.on('error', reject);
          stream.on('end', () => resolve(items));
        }),
    );
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async listChildren(prefix: string): Promise<ObjectChildren> {
    checkFolderPrefix(prefix);
    const out = await this.#call(
      'list',
      prefix,
      () =>
        new Promise<ObjectChildren>((resolve, reject) => {
          const objects: ObjectInfo[] = [];
          const folders: string[] = [];
          // Not recursive: ListObjectsV2 with delimiter "/", so the server rolls everything deeper into CommonPrefixes.
          const stream = this.#client.listObjectsV2(this.#bucket, prefix, false);
          stream.on('data', (it) => {
            if (it.prefix) folders.push(it.prefix);
            else if (it.name) objects.push({ key: it.name, sizeBytes: it.size, lastModified: it.lastModified });
          });
          stream.on('error', reject);
          stream.on('end', () => resolve({ objects, folders }));
        }),
    );
    out.objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    out.folders.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return out;
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    try {
      await this.#client.removeObject(this.#bucket, key);
    } catch (e) {
      if (NOT_FOUND_CODES.has((e as { code?: string }).code ?? '')) return;
      throw this.#mapError('delete', key, e);
    }
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  async #call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.#mapError(op, key, e);
    }
  }

  /** The one place where S3 and network failures become Hearth errors. */
  #mapError(op: string, key: string, e: unknown): HearthError {
    const err = e as { code?: string; message?: string };
    const what = isHearthError(e) ? e.message : err?.code ? `${err.code}: ${err.message ?? ''}` : (err?.message ?? String(e));
    return hearthError(
      'STORE_UNAVAILABLE',
      `s3 store ${op}${key ? ` "${key}"` : ''} at ${this.#endpoint} (bucket ${this.#bucket}): ${what}`,
      {
        cause: e,
      },
    );
  }
}

/**
 * http(s).request with a socket idle timeout on every request minio makes: `timeout` arms it before the socket
 * connects, every byte sent or received re-arms it. When it fires, the request (and the response being read, if
 * any) is destroyed with STORE_UNAVAILABLE, which fails the call, or the object stream a caller is reading,
 * instead of leaving it pending for ever.
 */
function idleTimeoutTransport(base: typeof http | typeof https, timeoutMs: number): Pick<typeof http, 'request'> {
  const request = (options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void): http.ClientRequest => {
    const req = base.request({ ...options, timeout: timeoutMs }, callback);
    let response: http.IncomingMessage | undefined;
    req.once('response', (res) => (response = res));
    req.on('timeout', () => {
      const err = hearthError('STORE_UNAVAILABLE', `the s3 store sent nothing for ${timeoutMs} ms (STORE_TIMEOUT_MS)`);
      response?.destroy(err);
      req.destroy(err);
    });
    return req;
  };
  return { request } as Pick<typeof http, 'request'>;
}
