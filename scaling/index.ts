// scaling: how many instances each pool should have. The autoscaler sizes pools by Little's law with Knative's
// stable and panic windows and applies each model's keep-alive policy (fixed, or the idle-time histogram) to its
// last instance; it drives the executor only through PoolControl (executor.control fits it), so the same code runs
// on SimulatedPools in simulated time (the keep-alive simulation the benchmarks replay traces through).
export {
  Autoscaler,
  autoscalerOptions,
  type AutoscalerOptions,
  type NodeBudget,
  type PoolControl,
  type PoolInstanceView,
  type PoolKeepAliveView,
  type PoolScalingStatus,
  type PoolStatus,
} from './autoscaler.ts';
export {
  KeepAliveTracker,
  IdleTimeHistogram,
  decideHistogram,
  HISTOGRAM_MIN_CV,
  HISTOGRAM_MAX_OUT_OF_RANGE,
  type KeepAliveDecision,
  type IdleHistogramView,
} from './keep-alive.ts';
export { RateWindow, type RateWindowOptions } from './rate-window.ts';
export { RunCost, type RunCostOptions } from './run-cost.ts';
export { SimulatedPools, replayTrace, type SimulatedModel, type SimulatedRequestResult } from './simulated-pools.ts';
export {
  simulateKeepAlive,
  type KeepAliveSimulationLine,
  type KeepAliveSimulationOptions,
  type KeepAliveSimulationResult,
  type KeepAliveSimulationTotals,
  type SimulatedFunction,
  type SimulationMeter,
} from './keep-alive-simulation.ts';
