// Starts s3rver (an S3-protocol server on the local disk) on a free port for one test file.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

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
