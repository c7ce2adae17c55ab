// Reads a request's kv_transfer_params the way the configured connector would, deciding which leg it is.
// Pure: no I/O.
import type { Connector } from './config.js';

export interface NixlRemote {
  engineId: string;
  requestId: string;
  blockIds: number[];
  host: string;
  port: number;
}

export interface DisaggSpec {
  req_id: string;
  receiver_host: string;
  receiver_init_port: number[];
  receiver_alloc_port: number[];
}

export type Leg =
  | { kind: 'direct'; ignoredParams: boolean }
  | { kind: 'nixl-prefill' }
  | { kind: 'nixl-decode'; remote: NixlRemote }
  /** do_remote_prefill with incomplete params: vLLM logs "Got invalid KVTransferParams" and prefills locally. */
  | { kind: 'nixl-decode-local'; reason: string }
  | { kind: 'lmcache-prefill'; spec: DisaggSpec; retFirstTok: boolean }
  | { kind: 'invalid'; reason: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPortList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((p) => Number.isInteger(p) && p > 0 && p < 65536);

// Newer vLLM sends one block-id list per KV-cache group; a single group is the plain list.
function blockIdList(v: unknown): number[] | null {
  if (Array.isArray(v) && v.length === 1 && Array.isArray(v[0])) return blockIdList(v[0]);
  if (Array.isArray(v) && v.every((b) => Number.isInteger(b))) return v as number[];
  return null;
}

export function classifyLeg(connector: Connector, params: unknown): Leg {
  if (params === undefined || params === null) return { kind: 'direct', ignoredParams: false };
  if (!isObj(params)) return { kind: 'invalid', reason: 'kv_transfer_params must be an object' };
  if (connector === 'nixl') return classifyNixl(params);
  if (connector === 'lmcache') return classifyLmcache(params);
  // Without a KV connector vLLM has nobody to hand the params to: they are ignored.
  return { kind: 'direct', ignoredParams: true };
}

function classifyNixl(p: Obj): Leg {
  if (p.do_remote_prefill === true) {
    const blockIds = blockIdList(p.remote_block_ids);
    if (!blockIds || blockIds.length === 0) {
      return { kind: 'nixl-decode-local', reason: 'no remote_block_ids: nothing to load' };
    }
    const missing = ['remote_engine_id', 'remote_request_id', 'remote_host', 'remote_port'].filter(
      (k) => p[k] === undefined || p[k] === null,
    );
    if (missing.length > 0) return { kind: 'nixl-decode-local', reason: `missing ${missing.join(', ')}` };
    const port = Number(p.remote_port);
    if (typeof p.remote_host !== 'string' || !Number.isInteger(port)) {
      return { kind: 'invalid', reason: 'remote_host must be a string and remote_port an integer' };
    }
    return {
      kind: 'nixl-decode',
      remote: {
        engineId: String(p.remote_engine_id),
        requestId: String(p.remote_request_id),
        blockIds,
        host: p.remote_host,
        port,
      },
    };
  }
  if (p.do_remote_decode === true) return { kind: 'nixl-prefill' };
  return { kind: 'direct', ignoredParams: false };
}

function classifyLmcache(p: Obj): Leg {
  if (p.disagg_spec === undefined || p.disagg_spec === null) return { kind: 'direct', ignoredParams: false };
  const s = p.disagg_spec;
  if (!isObj(s)) return { kind: 'invalid', reason: 'disagg_spec must be an object' };
  const problems: string[] = [];
  if (typeof s.req_id !== 'string' || s.req_id === '') problems.push('req_id (non-empty string)');
  if (typeof s.receiver_host !== 'string' || s.receiver_host === '') problems.push('receiver_host (string)');
  if (!isPortList(s.receiver_init_port)) problems.push('receiver_init_port (list of ports)');
  if (!isPortList(s.receiver_alloc_port)) problems.push('receiver_alloc_port (list of ports)');
  if (problems.length > 0) return { kind: 'invalid', reason: `disagg_spec needs ${problems.join(', ')}` };
  const spec = s as unknown as DisaggSpec;
  if (spec.receiver_init_port.length !== spec.receiver_alloc_port.length) {
    return {
      kind: 'invalid',
      reason: 'disagg_spec receiver_init_port and receiver_alloc_port differ in length',
    };
  }
  return { kind: 'lmcache-prefill', spec, retFirstTok: p.ret_first_tok === true };
}
