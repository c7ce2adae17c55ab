import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // .bench/ holds the benchmarks' compiled builds; .work/ is local scratch (both gitignored).
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      'charts/',
      'test/cluster/k8s-bins/',
      '.bench/',
      '.work/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
