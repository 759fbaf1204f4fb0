// Lint: typescript-eslint with type information, and the layout rule that a component is entered only through its
// index.ts (docs in CONTRIBUTING.md). Import cycles and the direction of the arrows are checked by
// dependency-cruiser (.dependency-cruiser.cjs).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Another component's file other than its index.ts, as seen from a file `depth` folders below the root. */
const internals = (depth) => ({
  regex: `^${'\\.\\./'.repeat(depth)}(?!\\.\\.)[^/]+/(?!index\\.ts$).+`,
  message: 'Import another component only through its index.ts (the layout rule in CONTRIBUTING.md).',
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'coverage/', 'benchmarks/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // fastify plugins and Promise-returning interface methods are async by convention, awaited or not.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Production code: one door per component.
  {
    files: ['*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\./(?!\\.)[^/]+/(?!index\\.ts$).+', message: internals(0).message }] }],
    },
  },
  {
    files: ['{core,protocol,model-store,functions,executor,scaling,ledger,jobs,gateway,client}/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [internals(1)] }] },
  },
  {
    files: ['{core,protocol,model-store,functions,executor,scaling,ledger,jobs,gateway,client}/*/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [internals(2)] }] },
  },
  // The dashboard runs in the browser (ui/tsconfig.json gives it the DOM).
  {
    files: ['ui/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
  },
  // Tests and benchmarks read JSON answers and poke at internals on purpose; the promise rules still hold there.
  {
    files: ['test/**/*.ts', 'benchmarks/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  { files: ['**/*.{js,mjs,cjs}'], ...tseslint.configs.disableTypeChecked },
);
