// Command-line flags of the benchmark scripts: `--name value` pairs and bare `--name` switches, read from
// process.argv. Every script states its own flags and defaults in its header comment.

/** The value after `--name`, or `def` when the flag is absent or has no value after it. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : def;
}

/** Whether the bare switch `--name` was given. */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
