// Before any test: build dist/ when it is missing or stale, because instance workers and the nodes the hostile and
// multi-node tests start run the compiled JavaScript, as production does.
// @ts-expect-error a plain-JS script with no type declarations
import { ensureBuild } from '../scripts/ensure-build.mjs';

export default async function setup(): Promise<void> {
  await (ensureBuild as (opts: { quiet: boolean }) => Promise<boolean>)({ quiet: true });
}
