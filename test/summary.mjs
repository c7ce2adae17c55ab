/* global process, console */
// Prints "N passed, N failed" over jest --json result files (one per tier), for CI and `npm run test:*`.
// usage: node test/summary.mjs EXIT_CODE FILE...   (a missing or unreadable file counts as one failure;
// a non-zero EXIT_CODE with no failed test counts as one too: lint, typecheck or a build broke)
import { readFileSync } from 'node:fs';

const [rc, ...files] = process.argv.slice(2);
let passed = 0;
let failed = 0;
for (const f of files) {
  try {
    const r = JSON.parse(readFileSync(f, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
  } catch {
    console.error(`[summary] no results in ${f}`);
    failed += 1;
  }
}
if (rc !== '0' && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
