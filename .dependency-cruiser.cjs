// Import cycles and the direction of the arrows between components (docs/architecture.md has the table): a
// component may use only those listed for it, so the executor never imports the gateway. `npm run lint:deps`.
const COMPONENTS = {
  core: [],
  protocol: ['core'],
  'model-store': ['core'],
  functions: ['core', 'protocol'],
  executor: ['core', 'protocol', 'model-store', 'functions'],
  scaling: ['core', 'executor'],
  ledger: ['core'],
  jobs: ['core', 'protocol', 'model-store', 'executor'],
  gateway: ['core', 'protocol', 'model-store', 'functions', 'executor', 'scaling', 'ledger', 'jobs'],
  client: ['core', 'protocol'],
  // The dashboard runs in the browser: it imports no server component, only preact and uplot.
  ui: [],
  cli: ['core', 'protocol', 'client'],
};

const names = Object.keys(COMPONENTS);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make start-up order and tests fragile.',
      from: {},
      to: { circular: true },
    },
    ...names.map((name) => ({
      name: `layer-${name}`,
      severity: 'error',
      comment: `${name}/ may use only: ${COMPONENTS[name].join(', ') || 'nothing'}.`,
      from: { path: `^${name}/` },
      to: { path: `^(${names.filter((n) => n !== name && !COMPONENTS[name].includes(n)).join('|')})/` },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|data|coverage|benchmarks/results)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.tsx', '.js', '.mjs'],
    },
  },
};
