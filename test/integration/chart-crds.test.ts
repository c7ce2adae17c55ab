// crds/ is the one source of truth for the DisaggCluster CRD; the chart ships a copy in its crds/
// (installed by Helm on first install, never upgraded). These tests fail when the copy drifts, and
// check that `make sync-crds` repairs a drift.
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { CHART_DIR, HelmSandbox, REPO_ROOT } from './chart-helm.js';

jest.setTimeout(120_000);

const helm = new HelmSandbox();
afterAll(() => helm.dispose());

const SOURCE_DIR = join(REPO_ROOT, 'crds');
const CHART_CRDS_DIR = join(CHART_DIR, 'crds');
const yamlFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();

describe('the chart CRD is a copy of crds/', () => {
  test('same files, byte for byte (fix: make sync-crds)', () => {
    expect(yamlFiles(CHART_CRDS_DIR)).toEqual(yamlFiles(SOURCE_DIR));
    expect(yamlFiles(SOURCE_DIR).length).toBeGreaterThan(0);
    for (const f of yamlFiles(SOURCE_DIR)) {
      const same =
        readFileSync(join(CHART_CRDS_DIR, f), 'utf8') === readFileSync(join(SOURCE_DIR, f), 'utf8');
      if (!same)
        throw new Error(`charts/disagg-operator/crds/${f} differs from crds/${f}: run \`make sync-crds\``);
    }
  });

  test('helm ships it as the DisaggCluster CRD, outside the templates', async () => {
    const shown = await helm.run(['show', 'crds', CHART_DIR]);
    expect(shown.code).toBe(0);
    const crds = parseAllDocuments(shown.stdout)
      .map((d) => d.toJS() as { kind?: string; metadata?: { name: string } } | null)
      .filter((d) => d?.kind === 'CustomResourceDefinition');
    expect(crds).toEqual([parse(readFileSync(join(SOURCE_DIR, 'disagg.dev_disaggclusters.yaml'), 'utf8'))]);
    // not a template: Helm's upgrade/uninstall never touch it (see docs/install.md)
    const rendered = await helm.templateRaw({});
    expect(rendered.stdout).not.toContain('kind: CustomResourceDefinition');
  });

  test('make sync-crds copies crds/ into the chart', () => {
    const dir = join(helm.dir, 'sync');
    mkdirSync(join(dir, 'charts', 'disagg-operator', 'crds'), { recursive: true });
    cpSync(join(REPO_ROOT, 'Makefile'), join(dir, 'Makefile'));
    cpSync(SOURCE_DIR, join(dir, 'crds'), { recursive: true });
    writeFileSync(
      join(dir, 'charts', 'disagg-operator', 'crds', 'disagg.dev_disaggclusters.yaml'),
      '# stale\n',
    );
    execFileSync('make', ['--no-print-directory', 'sync-crds'], { cwd: dir, stdio: 'pipe' });
    expect(
      readFileSync(join(dir, 'charts', 'disagg-operator', 'crds', 'disagg.dev_disaggclusters.yaml'), 'utf8'),
    ).toBe(readFileSync(join(SOURCE_DIR, 'disagg.dev_disaggclusters.yaml'), 'utf8'));
  });
});
