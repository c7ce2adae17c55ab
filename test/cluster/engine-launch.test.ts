// How a pod's first container becomes an engine command line (pure; no cluster needed).
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { engineLaunch, expandVars, httpPortOf } from './engine-launch.js';

const at = { podIP: '127.1.0.7', hostIP: '127.0.0.1', nodeName: 'loopback-0' };

function pod(container: Partial<NonNullable<V1Pod['spec']>['containers'][number]>, annotations = {}): V1Pod {
  return {
    metadata: { name: 'p-1', namespace: 'ns', uid: 'u-1', labels: { role: 'decode' }, annotations },
    spec: { containers: [{ name: 'engine', ...container }] },
  };
}

describe('httpPortOf', () => {
  test('annotation, then the port named http, then the first port, then 8000', () => {
    const ports = [
      { name: 'nixl', containerPort: 5600 },
      { name: 'http', containerPort: 9000 },
    ];
    expect(httpPortOf(pod({ ports }, { 'disagg.dev/http-port': '8123' }))).toBe(8123);
    expect(httpPortOf(pod({ ports }))).toBe(9000);
    expect(httpPortOf(pod({ ports: [{ containerPort: 7000 }] }))).toBe(7000);
    expect(httpPortOf(pod({}))).toBe(8000);
  });
});

describe('expandVars', () => {
  test('replaces $(VAR), keeps unknown references, $$ escapes', () => {
    expect(expandVars('--host=$(IP) $(NOPE) $$(IP)', { IP: '127.1.0.7' })).toBe(
      '--host=127.1.0.7 $(NOPE) $(IP)',
    );
  });
});

describe('engineLaunch', () => {
  test('resolves env (values, fieldRefs, earlier vars) and appends --host/--port', () => {
    const launch = engineLaunch(
      pod({
        args: ['--model', 'm', '--kv-host', '$(POD_IP)'],
        env: [
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'ROLE', valueFrom: { fieldRef: { fieldPath: "metadata.labels['role']" } } },
          { name: 'URL', value: 'http://$(POD_IP):1' },
          { name: 'SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        ],
        ports: [{ name: 'http', containerPort: 8100 }],
      }),
      at,
    );
    expect(launch.args).toEqual([
      '--model',
      'm',
      '--kv-host',
      '127.1.0.7',
      '--host',
      '127.1.0.7',
      '--port',
      '8100',
    ]);
    expect(launch.env).toEqual({
      POD_IP: '127.1.0.7',
      NAME: 'p-1',
      NS: 'ns',
      ROLE: 'decode',
      URL: 'http://127.1.0.7:1',
    });
    expect(launch.unresolvedEnv).toEqual(['SECRET']);
    expect(launch.httpPort).toBe(8100);
  });
});
