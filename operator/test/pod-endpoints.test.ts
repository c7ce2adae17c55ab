import { describe, expect, it } from '@jest/globals';
import {
  ANN_HTTP_PORT,
  ANN_LMCACHE_ALLOC_PORTS,
  ANN_LMCACHE_INIT_PORTS,
  ANN_NIXL_PORT,
} from '../src/api/labels.js';
import { discoverEndpoints, discoverPod } from '../src/discovery/pod-endpoints.js';
import { matchesSelector } from '../src/discovery/label-selector.js';
import { aCluster, aPod } from './fixtures.js';

describe('routable endpoints', () => {
  it('a Ready decode pod with an IP and valid ports becomes a NIXL decode endpoint', () => {
    const pod = aPod().named('d-0').role('decode').nixlPort(5601).ready('10.1.2.3').build();
    const d = discoverPod(pod, 'decode', 'nixl');
    expect(d.routable).toBe(true);
    expect(d.endpoint).toEqual({
      id: 'serving/d-0',
      url: 'http://10.1.2.3:8000',
      nixl: { sideChannelHost: '10.1.2.3', sideChannelPort: 5601 },
    });
  });

  it('is not routable while not Ready, without an IP, or terminating', () => {
    const notReady = aPod().role('decode').nixlPort().notReady().build();
    const noIp = aPod().role('decode').nixlPort().build();
    const terminating = aPod().role('decode').nixlPort().ready().terminating().build();
    expect(discoverPod(notReady, 'decode', 'nixl').routable).toBe(false);
    expect(discoverPod(noIp, 'decode', 'nixl').routable).toBe(false);
    expect(discoverPod(noIp, 'decode', 'nixl').problem).toBeUndefined();
    expect(discoverPod(terminating, 'decode', 'nixl').routable).toBe(false);
  });

  it('treats an evicted pod (Ready condition stale, IP cleared) as gone', () => {
    const evicted = aPod().role('decode').nixlPort().ready().build();
    delete evicted.status!.podIP;
    expect(discoverPod(evicted, 'decode', 'nixl').routable).toBe(false);
  });

  it('brackets IPv6 pod IPs in the URL but not in the side channel host', () => {
    const d = discoverPod(aPod().role('decode').nixlPort().ready('fd00::5').build(), 'decode', 'nixl');
    expect(d.endpoint?.url).toBe('http://[fd00::5]:8000');
    expect(d.endpoint?.nixl?.sideChannelHost).toBe('fd00::5');
  });

  it('reads LMCache init/alloc ports per TP rank from the annotations', () => {
    const pod = aPod().role('decode').lmcachePorts([7300, 7301], [7400, 7401]).ready('10.0.0.9').build();
    expect(discoverPod(pod, 'decode', 'lmcache').endpoint?.lmcache).toEqual({
      receiverHost: '10.0.0.9',
      initPorts: [7300, 7301],
      allocPorts: [7400, 7401],
    });
  });

  it('prefill pods need only the HTTP port, whatever the connector', () => {
    const pod = aPod().role('prefill').ready('10.0.0.4').build();
    expect(discoverPod(pod, 'prefill', 'lmcache').endpoint).toEqual({
      id: pod.metadata.namespace + '/' + pod.metadata.name,
      url: 'http://10.0.0.4:8000',
    });
    expect(discoverPod(pod, 'prefill', 'nixl').routable).toBe(true);
  });
});

describe('port declarations', () => {
  it('falls back to named container ports when annotations are absent', () => {
    const pod = aPod()
      .role('decode')
      .withoutAnnotation(ANN_HTTP_PORT)
      .containerPort('http', 9000)
      .containerPort('lmcache-init-0', 7300)
      .containerPort('lmcache-init-1', 7301)
      .containerPort('lmcache-alloc-0', 7400)
      .containerPort('lmcache-alloc-1', 7401)
      .ready('10.0.0.2')
      .build();
    const d = discoverPod(pod, 'decode', 'lmcache');
    expect(d.endpoint?.url).toBe('http://10.0.0.2:9000');
    expect(d.endpoint?.lmcache).toMatchObject({ initPorts: [7300, 7301], allocPorts: [7400, 7401] });
    const nixl = aPod().role('decode').containerPort('nixl', 5700).ready().build();
    expect(discoverPod(nixl, 'decode', 'nixl').endpoint?.nixl?.sideChannelPort).toBe(5700);
  });

  it('an annotation wins over a named port', () => {
    const pod = aPod()
      .role('prefill')
      .annotation(ANN_HTTP_PORT, '8100')
      .containerPort('http', 9000)
      .ready()
      .build();
    expect(discoverPod(pod, 'prefill', 'nixl').endpoint?.url).toMatch(/:8100$/);
  });

  it.each([
    ['not a number', ANN_HTTP_PORT, 'eighty', 'prefill', 'nixl'],
    ['zero', ANN_HTTP_PORT, '0', 'prefill', 'nixl'],
    ['above 65535', ANN_NIXL_PORT, '70000', 'decode', 'nixl'],
    ['a range', ANN_NIXL_PORT, '5600-5601', 'decode', 'nixl'],
    ['an empty list entry', ANN_LMCACHE_INIT_PORTS, '7300,', 'decode', 'lmcache'],
  ] as const)(
    'a malformed annotation (%s) leaves the pod out, naming pod and annotation',
    (_, key, value, role, connector) => {
      const pod = aPod()
        .named('bad-0')
        .role(role)
        .nixlPort()
        .lmcachePorts()
        .annotation(key, value)
        .ready()
        .build();
      const d = discoverPod(pod, role, connector);
      expect(d.routable).toBe(false);
      expect(d.endpoint).toBeUndefined();
      expect(d.problem).toContain('serving/bad-0');
      expect(d.problem).toContain(`${key}="${value}"`);
    },
  );

  it('never falls back to a named port when the annotation is malformed', () => {
    const pod = aPod()
      .role('prefill')
      .annotation(ANN_HTTP_PORT, 'x')
      .containerPort('http', 9000)
      .ready()
      .build();
    expect(discoverPod(pod, 'prefill', 'nixl').routable).toBe(false);
  });

  it('a missing declaration is reported, never guessed', () => {
    const pod = aPod().named('d-9').role('decode').ready().build();
    const d = discoverPod(pod, 'decode', 'nixl');
    expect(d.routable).toBe(false);
    expect(d.problem).toBe(
      `pod serving/d-9: annotation ${ANN_NIXL_PORT} is missing and no container port is named "nixl"`,
    );
  });

  it('init and alloc lists of different lengths are refused', () => {
    const pod = aPod()
      .role('decode')
      .annotation(ANN_LMCACHE_INIT_PORTS, '7300,7301')
      .annotation(ANN_LMCACHE_ALLOC_PORTS, '7400')
      .ready()
      .build();
    const d = discoverPod(pod, 'decode', 'lmcache');
    expect(d.routable).toBe(false);
    expect(d.problem).toContain('one port per TP rank');
  });
});

describe('pools', () => {
  it('template pools take pods by the operator labels; problems are listed, terminating pods are not reported', () => {
    const cluster = aCluster().build();
    const pods = [
      aPod().named('p-0').role('prefill').ready().build(),
      aPod().named('d-0').role('decode').nixlPort().ready().build(),
      aPod().named('d-1').role('decode').ready().build(),
      aPod().named('d-2').role('decode').ready().terminating().build(),
      aPod().named('other').cluster('other').role('decode').nixlPort().ready().build(),
    ];
    const d = discoverEndpoints(cluster, pods);
    expect(d.prefill.pods.map((p) => p.id)).toEqual(['serving/p-0']);
    expect(d.decode.pods.map((p) => p.id)).toEqual(['serving/d-0', 'serving/d-1', 'serving/d-2']);
    expect(d.problems).toEqual([expect.objectContaining({ reason: 'InvalidPodPorts', pod: 'serving/d-1' })]);
  });

  it('selector pools adopt matching pods; a pod both selectors claim is ambiguous and left out', () => {
    const cluster = aCluster()
      .adopt('prefill', { matchLabels: { tier: 'prefill' } })
      .adopt('decode', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['decode', 'both'] }] })
      .build();
    cluster.spec.prefill.selector = {
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['prefill', 'both'] }],
    };
    const pods = [
      aPod().named('a').label('tier', 'prefill').ready().build(),
      aPod().named('b').label('tier', 'decode').nixlPort().ready().build(),
      aPod().named('c').label('tier', 'both').nixlPort().ready().build(),
      aPod().named('d').label('tier', 'decode').cluster('elsewhere').nixlPort().ready().build(),
    ];
    const d = discoverEndpoints(cluster, pods);
    expect(d.prefill.pods.map((p) => p.id)).toEqual(['serving/a']);
    expect(d.decode.pods.map((p) => p.id)).toEqual(['serving/b']);
    expect(d.problems).toEqual([expect.objectContaining({ reason: 'AmbiguousPodRole', pod: 'serving/c' })]);
  });
});

describe('label selectors', () => {
  it.each([
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, { a: '' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' as const }] }, { a: 'x' }, false],
  ])('%j on %j -> %s', (selector, labels, expected) => {
    expect(matchesSelector(labels, selector)).toBe(expected);
  });
});
