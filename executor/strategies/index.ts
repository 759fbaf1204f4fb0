// The registry of scheduling strategies: each model picks one with ModelConfig.scheduling.strategy.
// A strategy is a factory of Scheduler (executor/scheduler.ts); one Scheduler instance serves one pool.
import type { Clock, ModelConfig, SchedulingStrategy } from '../../core/index.ts';
import type { Scheduler } from '../scheduler.ts';
import { EventScheduler } from './event.ts';
import { StatefulScheduler } from './stateful.ts';
import { StatelessScheduler } from './stateless.ts';

export interface SchedulerContext {
  /** `${name}@${version}` of the pool the scheduler serves. */
  poolKey: string;
  config: ModelConfig;
  clock: Clock;
}

export type SchedulerFactory = (ctx: SchedulerContext) => Scheduler;

// A fixed table of factories (no state of its own), so it may live at module level.
const registry = new Map<SchedulingStrategy, SchedulerFactory>([
  ['stateless', () => new StatelessScheduler()],
  ['stateful', () => new StatefulScheduler()],
  ['event', () => new EventScheduler()],
]);

/** Strategies that are implemented; the others fall back to stateless (see createScheduler). */
export function availableStrategies(): SchedulingStrategy[] {
  return [...registry.keys()];
}

/** Builds the strategy a model asked for; an unregistered one falls back to `stateless`. */
export function createScheduler(strategy: SchedulingStrategy, ctx: SchedulerContext): Scheduler {
  return (registry.get(strategy) ?? registry.get('stateless')!)(ctx);
}

export { StatelessScheduler, StatefulScheduler, EventScheduler };
