import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { createClusterPki, issueClientCert, type ClusterPki } from '../../test/cluster/certs.js';
import { RestKubeApi } from '../src/controller/kube-client.js';
import { connectToKube, type KubeConnection } from '../src/kube/connection.js';
import { inClusterConfig } from '../src/kube/in-cluster.js';
import { KubeconfigError, parseKubeconfig, selectContext } from '../src/kube/kubeconfig.js';
import { TokenFile } from '../src/kube/token-file.js';

let dir: string;
let pki: ClusterPki;
let server: Server;
let port: number;
const b64 = (path: string) => readFileSync(path).toString('base64');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
  pki = createClusterPki(dir);
  // Echoes who called: the client certificate's CN and the Authorization header.
  server = createServer(
    {
      key: readFileSync(pki.servingKey),
      cert: readFileSync(pki.servingCert),
      ca: readFileSync(pki.caCert),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ cn: peer?.subject?.CN ?? null, auth: req.headers.authorization ?? null }));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

interface Echo {
  cn: string | null;
  auth: string | null;
}

async function whoAmI(conn: KubeConnection): Promise<Echo> {
  try {
    return await new RestKubeApi(conn).get<Echo>('/version');
  } finally {
    await conn.close();
  }
}

let fileSeq = 0;
function writeConfig(doc: unknown, name = `config-${++fileSeq}`): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : stringify(doc));
  return path;
}

const kubeconfig = (cluster: Record<string, unknown>, user: Record<string, unknown>, extra = {}) => ({
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: 'c', cluster }],
  users: [{ name: 'u', user }],
  contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'team' } }],
  'current-context': 'ctx',
  ...extra,
});

const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KubeconfigError);
    return (err as Error).message;
  }
  throw new Error('expected a KubeconfigError');
};

describe('kubeconfig connections (against a TLS server)', () => {
  it('authenticates with client-certificate-data and trusts certificate-authority-data', async () => {
    const path = writeConfig(
      kubeconfig(
        { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caCert) },
        { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) },
      ),
    );
    const conn = await connectToKube({ kubeconfig: path });
    expect(conn.namespace).toBe('team');
    expect(await whoAmI(conn)).toEqual({ cn: 'admin', auth: null });
  });

  it('reads certificate files relative to the kubeconfig, sends a token and honours tls-server-name', async () => {
    const sub = join(dir, 'rel');
    mkdirSync(sub, { recursive: true });
    // Writes someone.crt and someone.key next to the kubeconfig.
    issueClientCert(sub, 'someone', { user: 'someone', groups: [] }, { cert: pki.caCert, key: pki.caKey });
    writeFileSync(join(sub, 'ca.pem'), readFileSync(pki.caCert));
    const path = join(sub, 'config');
    writeFileSync(
      path,
      stringify(
        kubeconfig(
          // The serving certificate names kubernetes.default, not "localhost-ish" names only.
          {
            server: `https://127.0.0.1:${port}`,
            'certificate-authority': 'ca.pem',
            'tls-server-name': 'kubernetes.default',
          },
          { 'client-certificate': 'someone.crt', 'client-key': 'someone.key', token: 'abc' },
        ),
      ),
    );
    expect(await whoAmI(await connectToKube({ kubeconfig: path }))).toEqual({
      cn: 'someone',
      auth: 'Bearer abc',
    });
  });

  it('refuses a server its CA does not vouch for, unless insecure-skip-tls-verify', async () => {
    const untrusted = writeConfig(kubeconfig({ server: `https://127.0.0.1:${port}` }, { token: 't' }));
    await expect(whoAmI(await connectToKube({ kubeconfig: untrusted }))).rejects.toThrow();
    const insecure = writeConfig(
      kubeconfig({ server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true }, { token: 't' }),
    );
    expect(await whoAmI(await connectToKube({ kubeconfig: insecure }))).toEqual({
      cn: null,
      auth: 'Bearer t',
    });
  });

  it('re-reads a tokenFile when it is rotated', async () => {
    const tokenPath = join(dir, 'rotating-token');
    writeFileSync(tokenPath, 'first\n');
    const path = writeConfig(
      kubeconfig(
        { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caCert) },
        { tokenFile: tokenPath, token: 'ignored: the file wins' },
      ),
    );
    const conn = await connectToKube({ kubeconfig: path });
    const api = new RestKubeApi(conn);
    try {
      expect((await api.get<Echo>('/version')).auth).toBe('Bearer first');
      // Rotated the way the kubelet does it: a new file moved into place.
      writeFileSync(`${tokenPath}.new`, 'second\n');
      renameSync(`${tokenPath}.new`, tokenPath);
      conn.unauthorized(); // (or wait for the next stat, at most a second)
      expect((await api.get<Echo>('/version')).auth).toBe('Bearer second');
    } finally {
      await conn.close();
    }
  });

  it('uses $KUBECONFIG (several files merged, the first current-context wins) when no --kubeconfig is given', async () => {
    const first = writeConfig({
      'current-context': 'ctx',
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    });
    const second = writeConfig(
      kubeconfig(
        { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caCert) },
        { token: 'merged' },
        {
          'current-context': 'other',
        },
      ),
    );
    const conn = await connectToKube({
      env: { KUBECONFIG: [first, join(dir, 'missing'), second].join(delimiter) },
    });
    expect(conn.namespace).toBeUndefined(); // the first file's context, which names none
    expect((await whoAmI(conn)).auth).toBe('Bearer merged');
  });
});

describe('in-cluster configuration', () => {
  const saDir = () => {
    const d = mkdtempSync(join(dir, 'sa-'));
    writeFileSync(join(d, 'token'), 'sa-token\n');
    writeFileSync(join(d, 'ca.crt'), readFileSync(pki.caCert));
    writeFileSync(join(d, 'namespace'), 'disagg-system');
    return d;
  };

  it('reads the service host and port, the CA, the token and the namespace', async () => {
    const d = saDir();
    const conn = await connectToKube({
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) },
      home: join(dir, 'no-home'),
      serviceAccountDir: d,
    });
    expect(conn.source).toBe('in-cluster');
    expect(conn.server).toBe(`https://127.0.0.1:${port}`);
    expect(conn.namespace).toBe('disagg-system');
    expect(await whoAmI(conn)).toEqual({ cn: null, auth: 'Bearer sa-token' });
  });

  it('brackets an IPv6 service host and names what is missing', () => {
    const d = saDir();
    expect(
      inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, d).cluster
        .server,
    ).toBe('https://[fd00::1]:443');
    expect(errorOf(() => inClusterConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, d))).toMatch(
      /KUBERNETES_SERVICE_PORT/,
    );
    expect(
      errorOf(() =>
        inClusterConfig(
          { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
          join(d, 'nope'),
        ),
      ),
    ).toMatch(/no ServiceAccount token/);
  });

  it('says where it looked when there is no configuration at all', async () => {
    await expect(
      connectToKube({ env: {}, home: join(dir, 'no-home'), serviceAccountDir: join(dir, 'no-sa') }),
    ).rejects.toThrow(/no Kubernetes configuration.*KUBECONFIG.*not in a pod/);
  });
});

describe('token file', () => {
  it('picks up a new token once the file changes, and keeps the old one while the file is briefly missing', () => {
    const path = join(dir, 'token-file');
    writeFileSync(path, 'one');
    let now = 0;
    const tf = new TokenFile(path, { checkMs: 1000, maxAgeMs: 60_000, now: () => now });
    expect(tf.get()).toBe('one');
    writeFileSync(path, 'two-longer');
    now = 500;
    expect(tf.get()).toBe('one'); // not checked again yet
    now = 1500;
    expect(tf.get()).toBe('two-longer');
    rmSync(path);
    now = 3000;
    expect(tf.get()).toBe('two-longer');
    expect(() => new TokenFile(path).get()).toThrow(/cannot read token file/);
  });
});

describe('kubeconfig documents', () => {
  const base = () => kubeconfig({ server: 'https://k8s.example:6443' }, { token: 't' });

  it('selects current-context, or a named context', () => {
    const doc = base();
    doc.clusters.push({ name: 'c2', cluster: { server: 'https://other:443' } });
    doc.contexts.push({ name: 'ctx2', context: { cluster: 'c2', user: 'u', namespace: 'x' } });
    const cfg = parseKubeconfig(stringify(doc));
    const cur = selectContext(cfg);
    expect(cur.kind === 'native' && cur.cluster.server).toBe('https://k8s.example:6443');
    const named = selectContext(cfg, 'ctx2');
    expect(named.kind === 'native' && [named.cluster.server, named.namespace]).toEqual([
      'https://other:443',
      'x',
    ]);
  });

  it.each<[string, (d: ReturnType<typeof base>) => unknown, RegExp]>([
    ['YAML syntax', () => 'clusters: [', /not valid YAML/],
    ['a list where a mapping belongs', () => ['a'], /expected a mapping/],
    ['another kind', (d) => ({ ...d, kind: 'Pod' }), /kind is "Pod", expected Config/],
    ['no current-context', (d) => ({ ...d, 'current-context': undefined }), /no current-context/],
    ['an unknown current-context', (d) => ({ ...d, 'current-context': 'nope' }), /no context named "nope"/],
    [
      'a cluster without server',
      (d) => ({ ...d, clusters: [{ name: 'c', cluster: {} }] }),
      /clusters\[0\]\.cluster\.server is missing/,
    ],
    [
      'a server that is not a URL',
      (d) => ({ ...d, clusters: [{ name: 'c', cluster: { server: 'k8s:6443:x' } }] }),
      /clusters\[0\]\.cluster\.server: "k8s:6443:x"/,
    ],
    ['clusters that is not a list', (d) => ({ ...d, clusters: { c: 1 } }), /clusters must be a list/],
    ['an entry without a name', (d) => ({ ...d, users: [{ user: {} }] }), /users\[0\]\.name is missing/],
    [
      'a context naming a missing user',
      (d) => ({ ...d, contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'ghost' } }] }),
      /contexts\[0\]\.context\.user: no user named "ghost"/,
    ],
    [
      'a context without cluster',
      (d) => ({ ...d, contexts: [{ name: 'ctx', context: { user: 'u' } }] }),
      /contexts\[0\]\.context\.cluster is missing/,
    ],
    [
      'bad base64',
      (d) => ({
        ...d,
        users: [{ name: 'u', user: { 'client-certificate-data': 'abc', 'client-key-data': '%%%' } }],
      }),
      /users\[0\]\.user\.client-key-data must be base64/,
    ],
    [
      'a certificate without key',
      (d) => ({ ...d, users: [{ name: 'u', user: { 'client-certificate-data': 'YWJj' } }] }),
      /client-key\(-data\) is missing/,
    ],
    [
      'an unreadable certificate-authority file',
      (d) => ({
        ...d,
        clusters: [
          { name: 'c', cluster: { server: 'https://x', 'certificate-authority': '/nonexistent/ca.crt' } },
        ],
      }),
      /clusters\[0\]\.cluster\.certificate-authority: cannot read \/nonexistent\/ca\.crt/,
    ],
    [
      'insecure-skip-tls-verify as a string',
      (d) => ({
        ...d,
        clusters: [{ name: 'c', cluster: { server: 'https://x', 'insecure-skip-tls-verify': 'yes' } }],
      }),
      /insecure-skip-tls-verify must be true or false/,
    ],
  ])('refuses %s with an error naming the field', (_what, edit, message) => {
    const doc = edit(base());
    const text = typeof doc === 'string' ? doc : stringify(doc);
    expect(errorOf(() => selectContext(parseKubeconfig(text, '/etc/kube/config')))).toMatch(message);
    expect(errorOf(() => selectContext(parseKubeconfig(text, '/etc/kube/config')))).toMatch(
      /^\/etc\/kube\/config|kubeconfig/,
    );
  });

  it('hands users it does not implement to client-node, with paths made absolute', () => {
    const doc = kubeconfig(
      { server: 'https://k8s.example:6443', 'certificate-authority': 'ca.crt' },
      { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './bin/get-token', args: ['x'] } },
    );
    const sel = selectContext(parseKubeconfig(stringify(doc), 'config', '/home/me/.kube'));
    expect(sel.kind).toBe('delegate');
    if (sel.kind !== 'delegate') return;
    expect(sel.reason).toBe('user exec');
    const d = sel.document as {
      clusters: Array<{ cluster: Record<string, unknown> }>;
      users: Array<{ user: { exec: { command: string } } }>;
    };
    expect(d.clusters[0]!.cluster['certificate-authority']).toBe('/home/me/.kube/ca.crt');
    expect(d.users[0]!.user.exec.command).toBe('/home/me/.kube/bin/get-token');
    for (const user of [
      { username: 'a', password: 'b' },
      { 'auth-provider': { name: 'oidc' } },
      { as: 'someone', token: 't' },
    ])
      expect(selectContext(parseKubeconfig(stringify(kubeconfig({ server: 'https://x' }, user)))).kind).toBe(
        'delegate',
      );
    expect(
      selectContext(
        parseKubeconfig(stringify(kubeconfig({ server: 'https://x', 'proxy-url': 'http://p:3128' }, {}))),
      ).kind,
    ).toBe('delegate');
  });
});
