// s3rver ships no type declarations; this is the part of its API the tests use.
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: { port?: number; address?: string; silent?: boolean; directory?: string; resetOnClose?: boolean });
    run(): Promise<{ port: number; address: string }>;
    close(): Promise<void>;
  }
}
