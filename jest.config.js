// jest runs the TypeScript sources as native ESM (ts-jest in ESM mode, transpile only:
// type checking is `npm run typecheck`'s job, so tests start fast).
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, isolatedModules: true, tsconfig: 'tsconfig.json' }],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  testEnvironment: 'node',
};
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/router/test/**/*.test.ts', '<rootDir>/operator/test/**/*.test.ts'],
    },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...common, displayName: 'cluster', testMatch: ['<rootDir>/test/cluster/**/*.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    // Real vLLM engines (`make vllm-cpu`); run alone and in band (`make test-real`): each engine
    // takes a core, so nothing else may compete with them.
    { ...common, displayName: 'real', testMatch: ['<rootDir>/test/real/**/*.test.ts'] },
    // A real kubelet + containerd node in private namespaces (`make test-node`, in band, as root).
    { ...common, displayName: 'node', testMatch: ['<rootDir>/test/node/**/*.test.ts'] },
  ],
};
