// Reads kubeconfig files (one, or several merged like $KUBECONFIG) into the one context the
// operator uses: server, TLS material and credentials. It covers certificates, tokens and token
// files; a user that needs more (exec plugins, auth providers, basic auth, impersonation) or a
// cluster behind a proxy is handed to client-node instead (see connection.ts).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

/** Where the API server is and how to trust it. */
export interface ClusterEndpoint {
  /** https://host:port, no trailing slash. */
  server: string;
  /** PEM bundle to trust instead of the system roots. */
  ca?: Buffer;
  insecureSkipTlsVerify: boolean;
  /** SNI and certificate name to expect, when it differs from the server's host. */
  tlsServerName?: string;
}

/** The credentials this module handles itself. */
export interface NativeCredentials {
  clientCert?: Buffer;
  clientKey?: Buffer;
  token?: string;
  /** Re-read while running (bound tokens rotate); wins over `token`, as in client-go. */
  tokenFile?: string;
}

export type KubeconfigSelection =
  | {
      kind: 'native';
      context: string;
      cluster: ClusterEndpoint;
      credentials: NativeCredentials;
      namespace?: string;
    }
  | {
      /** Authentication this module does not implement; the caller delegates to client-node. */
      kind: 'delegate';
      context: string;
      reason: string;
      namespace?: string;
      /** A kubeconfig of just this context, its cluster and user, with file paths made absolute. */
      document: Record<string, unknown>;
    };

const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
  'disable-compression',
]);
const USER_KEYS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
  'extensions',
]);

type Doc = Record<string, unknown>;

/** A named entry and the directory its relative paths are resolved against. */
interface Entry {
  body: Doc;
  where: string;
  dir: string;
}

interface Merged {
  currentContext?: string;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
}

const isObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses one kubeconfig document; `source` names it in errors, `dir` anchors relative paths. */
function parseDocument(text: string, source: string, dir: string, into: Merged): void {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KubeconfigError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return; // an empty file adds nothing, as in kubectl
  if (!isObject(doc)) throw new KubeconfigError(`${source}: expected a mapping (apiVersion, clusters, ...)`);
  if (doc.kind !== undefined && doc.kind !== 'Config')
    throw new KubeconfigError(`${source}: kind is ${JSON.stringify(doc.kind)}, expected Config`);
  const cc = doc['current-context'];
  if (cc !== undefined && cc !== '' && typeof cc !== 'string')
    throw new KubeconfigError(`${source}: current-context must be a string`);
  // The first file that sets a value wins (kubectl's merge rule).
  if (into.currentContext === undefined && typeof cc === 'string' && cc !== '') into.currentContext = cc;
  for (const [list, inner, map] of [
    ['clusters', 'cluster', into.clusters],
    ['users', 'user', into.users],
    ['contexts', 'context', into.contexts],
  ] as const) {
    const items = doc[list];
    if (items === undefined || items === null) continue;
    if (!Array.isArray(items)) throw new KubeconfigError(`${source}: ${list} must be a list`);
    items.forEach((item: unknown, i) => {
      const where = `${source}: ${list}[${i}]`;
      if (!isObject(item)) throw new KubeconfigError(`${where} must be a mapping`);
      if (typeof item.name !== 'string' || item.name === '')
        throw new KubeconfigError(`${where}.name is missing`);
      const body = item[inner] ?? {};
      if (!isObject(body)) throw new KubeconfigError(`${where}.${inner} must be a mapping`);
      if (!map.has(item.name)) map.set(item.name, { body, where: `${where}.${inner}`, dir });
    });
  }
}

/** Reads and merges kubeconfig files in order (the first file that sets a value wins). */
export function readKubeconfigFiles(paths: readonly string[]): Merged {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new KubeconfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
    }
    parseDocument(text, path, dirname(path), merged);
  }
  return merged;
}

/** Parses kubeconfig text (tests and callers that hold the document in memory). */
export function parseKubeconfig(text: string, source = 'kubeconfig', dir = process.cwd()): Merged {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map() };
  parseDocument(text, source, dir, merged);
  return merged;
}

/** Picks the context (named, else current-context) and resolves its cluster and user. */
export function selectContext(config: Merged, contextName?: string): KubeconfigSelection {
  const name = contextName ?? config.currentContext;
  if (!name) throw new KubeconfigError('kubeconfig has no current-context (and no context was named)');
  const ctx = config.contexts.get(name);
  if (!ctx) throw new KubeconfigError(`kubeconfig has no context named ${JSON.stringify(name)}`);
  const clusterName = ctx.body.cluster;
  if (typeof clusterName !== 'string' || clusterName === '')
    throw new KubeconfigError(`${ctx.where}.cluster is missing`);
  const cluster = config.clusters.get(clusterName);
  if (!cluster)
    throw new KubeconfigError(`${ctx.where}.cluster: no cluster named ${JSON.stringify(clusterName)}`);
  const userName = ctx.body.user;
  if (userName !== undefined && typeof userName !== 'string')
    throw new KubeconfigError(`${ctx.where}.user must be a string`);
  const user = userName ? config.users.get(userName) : undefined;
  if (userName && !user)
    throw new KubeconfigError(`${ctx.where}.user: no user named ${JSON.stringify(userName)}`);
  const ns = ctx.body.namespace;
  if (ns !== undefined && typeof ns !== 'string')
    throw new KubeconfigError(`${ctx.where}.namespace must be a string`);
  const namespace = ns || undefined;

  validServer(cluster);
  const unsupportedCluster = Object.keys(cluster.body).filter((k) => !CLUSTER_KEYS.has(k));
  const unsupportedUser = user ? Object.keys(user.body).filter((k) => !USER_KEYS.has(k)) : [];
  const unsupported = [
    ...unsupportedCluster.map((k) => `cluster ${k}`),
    ...unsupportedUser.map((k) => `user ${k}`),
  ];
  if (unsupported.length > 0)
    return {
      kind: 'delegate',
      context: name,
      reason: unsupported.join(', '),
      namespace,
      document: standalone(name, ctx, clusterName, cluster, userName, user),
    };
  return {
    kind: 'native',
    context: name,
    cluster: resolveCluster(cluster),
    credentials: user ? resolveUser(user) : {},
    namespace,
  };
}

function validServer(entry: Entry): string {
  const { body, where } = entry;
  const server = body.server;
  if (typeof server !== 'string' || server === '') throw new KubeconfigError(`${where}.server is missing`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigError(`${where}.server: ${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new KubeconfigError(`${where}.server: ${JSON.stringify(server)} must be an http(s) URL`);
  return server;
}

function resolveCluster(entry: Entry): ClusterEndpoint {
  const { body, where } = entry;
  const server = validServer(entry);
  const insecure = body['insecure-skip-tls-verify'];
  if (insecure !== undefined && typeof insecure !== 'boolean')
    throw new KubeconfigError(`${where}.insecure-skip-tls-verify must be true or false`);
  const sni = body['tls-server-name'];
  if (sni !== undefined && typeof sni !== 'string')
    throw new KubeconfigError(`${where}.tls-server-name must be a string`);
  return {
    server: server.replace(/\/+$/, ''),
    ca: material(entry, 'certificate-authority', 'certificate-authority-data'),
    insecureSkipTlsVerify: insecure === true,
    tlsServerName: sni || undefined,
  };
}

function resolveUser(entry: Entry): NativeCredentials {
  const { body, where } = entry;
  const clientCert = material(entry, 'client-certificate', 'client-certificate-data');
  const clientKey = material(entry, 'client-key', 'client-key-data');
  if (clientCert && !clientKey)
    throw new KubeconfigError(`${where}: client-certificate is set but client-key(-data) is missing`);
  if (clientKey && !clientCert)
    throw new KubeconfigError(`${where}: client-key is set but client-certificate(-data) is missing`);
  const token = body.token;
  if (token !== undefined && typeof token !== 'string')
    throw new KubeconfigError(`${where}.token must be a string`);
  const tokenFile = body.tokenFile;
  if (tokenFile !== undefined && (typeof tokenFile !== 'string' || tokenFile === ''))
    throw new KubeconfigError(`${where}.tokenFile must be a file path`);
  return {
    clientCert,
    clientKey,
    token: token || undefined,
    tokenFile: tokenFile ? absolute(entry.dir, tokenFile) : undefined,
  };
}

/** `<name>` (a file, relative to the kubeconfig) or `<name>-data` (base64); data wins, as in kubectl. */
function material(entry: Entry, fileKey: string, dataKey: string): Buffer | undefined {
  const { body, where } = entry;
  const data = body[dataKey];
  if (data !== undefined && data !== '') {
    if (typeof data !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(data))
      throw new KubeconfigError(`${where}.${dataKey} must be base64`);
    const buf = Buffer.from(data, 'base64');
    if (buf.length === 0) throw new KubeconfigError(`${where}.${dataKey} decodes to nothing`);
    return buf;
  }
  const file = body[fileKey];
  if (file === undefined || file === '') return undefined;
  if (typeof file !== 'string') throw new KubeconfigError(`${where}.${fileKey} must be a file path`);
  const path = absolute(entry.dir, file);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new KubeconfigError(`${where}.${fileKey}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The selected context as a document of its own, its relative file paths resolved. */
function standalone(
  name: string,
  ctx: Entry,
  clusterName: string,
  cluster: Entry,
  userName: string | undefined,
  user: Entry | undefined,
): Doc {
  const resolved = (entry: Entry, keys: string[]): Doc => {
    const body: Doc = { ...entry.body };
    for (const k of keys)
      if (typeof body[k] === 'string' && body[k] !== '') body[k] = absolute(entry.dir, body[k] as string);
    const exec = body.exec;
    // A command with a path separator is relative to the kubeconfig; a bare name is looked up in PATH.
    if (isObject(exec) && typeof exec.command === 'string' && exec.command.includes('/'))
      body.exec = { ...exec, command: absolute(entry.dir, exec.command) };
    return body;
  };
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': name,
    clusters: [{ name: clusterName, cluster: resolved(cluster, ['certificate-authority']) }],
    users: user
      ? [{ name: userName, user: resolved(user, ['client-certificate', 'client-key', 'tokenFile']) }]
      : [],
    contexts: [{ name, context: ctx.body }],
  };
}

const absolute = (dir: string, p: string): string => (isAbsolute(p) ? p : join(dir, p));
