// Pod addresses of loopback nodes: a node owns 127.N.0.0/16 (N claimed in loopback-octets.ts), so
// every pod gets its own IP and can bind the same ports as its neighbours (all of 127.0.0.0/8
// reaches lo on Linux).

export function nodePodCidr(secondOctet: number): string {
  if (!Number.isInteger(secondOctet) || secondOctet < 1 || secondOctet > 254) {
    throw new Error(`second octet ${secondOctet} out of range 1..254`);
  }
  return `127.${secondOctet}.0.0/16`;
}

/**
 * Hands out the addresses of one node's /16 in order and wraps around, so an address that was just
 * released (and may still be in a client's endpoint list) is the last to come back.
 */
export class LoopbackAddressPool {
  private readonly inUse = new Set<string>();
  private next = 0;
  private readonly prefix: string;
  // .0 and .255 in the last octet are skipped: they look like network/broadcast addresses to people
  private static readonly HOSTS_PER_BLOCK = 254;
  private static readonly SIZE = 256 * 254;

  readonly cidr: string;

  constructor(readonly secondOctet: number) {
    this.cidr = nodePodCidr(secondOctet);
    this.prefix = `127.${secondOctet}`;
  }

  private at(i: number): string {
    const third = Math.floor(i / LoopbackAddressPool.HOSTS_PER_BLOCK);
    const fourth = (i % LoopbackAddressPool.HOSTS_PER_BLOCK) + 1;
    return `${this.prefix}.${third}.${fourth}`;
  }

  allocate(): string {
    for (let n = 0; n < LoopbackAddressPool.SIZE; n++) {
      const ip = this.at(this.next);
      this.next = (this.next + 1) % LoopbackAddressPool.SIZE;
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip);
        return ip;
      }
    }
    throw new Error(`no free address left in ${this.cidr}`);
  }

  /** Marks an address (e.g. one found in an existing pod's status) as taken; false if not ours or taken. */
  reserve(ip: string): boolean {
    if (!this.contains(ip) || this.inUse.has(ip)) return false;
    this.inUse.add(ip);
    return true;
  }

  release(ip: string): void {
    this.inUse.delete(ip);
  }

  contains(ip: string): boolean {
    const parts = ip.split('.').map(Number);
    return (
      parts.length === 4 &&
      `${parts[0]}.${parts[1]}` === this.prefix &&
      parts[2] >= 0 &&
      parts[2] <= 255 &&
      parts[3] >= 1 &&
      parts[3] <= 254
    );
  }

  get size(): number {
    return this.inUse.size;
  }
}
