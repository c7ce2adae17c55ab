// docs/install.md matches the chart: its values reference table is the one values.yaml's `# --`
// comments generate (UPDATE_DOCS=1 rewrites it), every value is documented, and every `--set` the
// guide shows is accepted by the chart. (test/e2e/chart-docs.test.ts runs the guide's commands.)
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  CHART_DIR,
  HelmSandbox,
  KUBE_VERSION,
  REPO_ROOT,
  undocumentedValues,
  valuesTableMarkdown,
} from './chart-helm.js';

jest.setTimeout(120_000);

const helm = new HelmSandbox();
afterAll(() => helm.dispose());

const INSTALL_MD = join(REPO_ROOT, 'docs', 'install.md');
const valuesYaml = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const TABLE = /(<!-- values-table:start[^>]*-->\n)([\s\S]*?)(<!-- values-table:end -->)/;

describe('docs/install.md', () => {
  test('every value in values.yaml has a "# --" description', () => {
    expect(undocumentedValues(valuesYaml)).toEqual([]);
  });

  test('the values reference table is generated from values.yaml', () => {
    const doc = readFileSync(INSTALL_MD, 'utf8');
    const m = TABLE.exec(doc);
    if (!m) throw new Error('docs/install.md has no values-table markers');
    const expected = `${valuesTableMarkdown(valuesYaml)}\n`;
    if (process.env.UPDATE_DOCS === '1' && m[2] !== expected) {
      writeFileSync(
        INSTALL_MD,
        doc.replace(TABLE, (_all, start: string, _old, end: string) => `${start}${expected}${end}`),
      );
      return;
    }
    expect(m[2]).toBe(expected);
  });

  test('every --set the guide shows is a value the chart accepts', async () => {
    const doc = readFileSync(INSTALL_MD, 'utf8');
    const sets = [...doc.matchAll(/--set (?:'([^']+)'|([^\s`\\]+))/g)].map((m) => (m[1] ?? m[2])!);
    expect(sets.length).toBeGreaterThan(5);
    for (const set of sets) {
      const r = await helm.run([
        'template',
        'disagg',
        CHART_DIR,
        '--kube-version',
        KUBE_VERSION,
        '--set',
        set,
      ]);
      expect({ set, code: r.code, stderr: r.stderr }).toEqual({ set, code: 0, stderr: '' });
    }
  });

  test('the DisaggCluster manifests parse, and their engine args are strings', () => {
    const doc = readFileSync(INSTALL_MD, 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) {
      const [obj] = parseAllDocuments(block).map((d) => {
        expect(d.errors).toEqual([]);
        return d.toJS() as {
          kind: string;
          spec: Record<string, { template: { spec: { containers: Array<{ args: unknown[] }> } } }>;
        };
      });
      expect(obj!.kind).toBe('DisaggCluster');
      for (const pool of ['prefill', 'decode']) {
        for (const arg of obj!.spec[pool]!.template.spec.containers[0]!.args)
          expect(typeof arg).toBe('string');
      }
    }
  });
});
