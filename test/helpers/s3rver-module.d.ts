// s3rver ships no type declarations; this is the part of its API the tests use.
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: { port?: number; address?: string; silent?: boolean; directory?: string; resetOnClose?: boolean });
    run(): Promise<{ port: number; address: string }>;
    close(): Promise<void>;
  }
}

declare module 's3rver/lib/stores/filesystem.js' {
  interface S3Object {
    key: string;
  }
  interface ListOptions {
    delimiter?: string;
    prefix?: string;
    startAfter?: string;
    maxKeys?: number;
  }
  export default class FilesystemStore {
    listObjects(bucket: string, options: ListOptions): Promise<{ objects: S3Object[]; commonPrefixes: string[]; isTruncated: boolean }>;
  }
}
