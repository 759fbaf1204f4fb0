// Starts s3rver (an S3-protocol server on the local disk) on a free port for one test file.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

// s3rver 3.7.1 (its last release) prunes its folder walk one level below a listing's prefix when a delimiter is
// given, so a common prefix whose objects all lie two or more levels deeper is left out (real S3 and MinIO list
// it). The listing with a delimiter is rebuilt here from the full listing under the prefix, as S3 defines it.
const listObjects = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  if (!options.delimiter) return listObjects.call(this, bucket, options);
  const prefix = options.prefix ?? '';
  const all = await listObjects.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
  const objects: typeof all.objects = [];
  const commonPrefixes = new Set<string>();
  for (const o of all.objects) {
    const at = o.key.slice(prefix.length).indexOf(options.delimiter);
    if (at === -1) objects.push(o);
    else commonPrefixes.add(o.key.slice(0, prefix.length + at + options.delimiter.length));
  }
  if (objects.length + commonPrefixes.size > (options.maxKeys ?? Infinity))
    throw new Error('s3rver shim: a listing with a delimiter past maxKeys is not supported');
  return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated: false };
};

export interface S3rverHandle {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** The folder s3rver keeps its buckets in. */
  directory: string;
  close(): Promise<void>;
}

export async function startS3rver(): Promise<S3rverHandle> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const addr = (await server.run()) as { port: number };
  return {
    // s3rver accepts any key pair whose access key is S3RVER with the matching secret.
    endpoint: `http://127.0.0.1:${addr.port}`,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    region: 'us-east-1',
    directory,
    async close() {
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
