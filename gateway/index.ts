// gateway: the HTTP surface on fastify and the wiring of a whole node. main.ts (and tests) enter here.
export { createHearth, type Hearth, type HearthOverrides } from './hearth.ts';
export { buildApp, toHearthError, type AppDeps } from './app.ts';
export { installFatalHandlers } from './fatal-errors.ts';
