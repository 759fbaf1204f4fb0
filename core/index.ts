// core: the shared vocabulary of Hearth. It imports nothing from the other components.
export * from './datatypes.ts';
export * from './tensor.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './clock.ts';
export * from './manifest.ts';
export * from './model-config.ts';
export * from './observer.ts';
export * from './cold-start-count.ts';
