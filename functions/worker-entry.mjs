// Bootstrap of an instance worker. Plain JS so Node can start it directly: it registers tsx's ESM
// loader in this thread, then imports the TypeScript worker body. The same file works under
// `tsx main.ts` (where the loader is already active) and under vitest (where it is not).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
