// Throwaway PKI for a test control plane, made with the system's openssl (ECDSA P-256: fast to
// generate, accepted by every component). One CA signs the serving cert and the client certs.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** Service-account token signing key pair (private for the apiserver and controller-manager). */
  saKey: string;
  saPub: string;
}

export interface ClientIdentity {
  /** Becomes the user name (CN). */
  user: string;
  /** Become the groups (one O= each). */
  groups: string[];
}

const VALID_DAYS = '7';
// SANs of the serving cert: what clients dial (loopback) plus the in-cluster service VIP.
const SERVING_SANS = [
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'IP:127.0.0.1',
  'IP:10.0.0.1',
];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

function signedCert(
  dir: string,
  base: string,
  subject: string,
  extensions: string[],
  ca: { cert: string; key: string },
): { cert: string; key: string } {
  const key = join(dir, `${base}.key`);
  const csr = join(dir, `${base}.csr`);
  const cert = join(dir, `${base}.crt`);
  const ext = join(dir, `${base}.ext`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  writeFileSync(ext, extensions.join('\n') + '\n');
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    VALID_DAYS,
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** Writes a CA, the apiserver serving cert, the admin client cert and the SA key pair into dir. */
export function createClusterPki(dir: string): ClusterPki {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  newKey(caKey);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=disagg-test-ca',
    '-days',
    VALID_DAYS,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '-out',
    caCert,
  ]);
  const ca = { cert: caCert, key: caKey };
  const serving = signedCert(
    dir,
    'apiserver',
    '/CN=kube-apiserver',
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${SERVING_SANS.join(',')}`,
    ],
    ca,
  );
  const admin = issueClientCert(dir, 'admin', { user: 'admin', groups: ['system:masters'] }, ca);
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  newKey(saKey);
  openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub]);
  return {
    dir,
    caCert,
    caKey,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saKey,
    saPub,
  };
}

/** Issues a client cert (CN=user, O=each group) signed by the cluster CA. */
export function issueClientCert(
  dir: string,
  base: string,
  id: ClientIdentity,
  ca: { cert: string; key: string },
): { cert: string; key: string } {
  const subject = id.groups.map((g) => `/O=${g}`).join('') + `/CN=${id.user}`;
  return signedCert(
    dir,
    base,
    subject,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ],
    ca,
  );
}

export function pem(path: string): string {
  return readFileSync(path, 'utf8');
}
