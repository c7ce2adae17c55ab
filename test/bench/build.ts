// Compiles the project (`tsc -p tsconfig.build.json`, the build the image runs) into a benchmark's
// own directory, so a benchmark never races `npm run build`'s dist/ or another benchmark.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../cluster/bins.js';

/** Builds into `outDir` and returns it; `<outDir>/router/src/main.js` and `<outDir>/operator/src/main.js` are the entry points. */
export async function buildInto(outDir: string): Promise<string> {
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    // tsc still emits on type errors (noEmitOnError is off): type errors elsewhere in the tree
    // must not stop the benchmark; a missing output will.
    const out = (err as { stdout?: string }).stdout ?? '';
    process.stderr.write(
      `tsc reported errors (output still emitted):\n${out.split('\n').slice(0, 10).join('\n')}\n`,
    );
  }
  return outDir;
}
