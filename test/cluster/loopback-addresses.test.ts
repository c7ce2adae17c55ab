// Pod address allocation of loopback nodes (pure).
import { describe, expect, test } from '@jest/globals';
import { LoopbackAddressPool, nodePodCidr } from './loopback-addresses.js';

describe('LoopbackAddressPool', () => {
  test('a node hands out distinct addresses of its 127.N.0.0/16', () => {
    expect(nodePodCidr(2)).toBe('127.2.0.0/16');
    expect(() => nodePodCidr(0)).toThrow();
    const pool = new LoopbackAddressPool(2);
    expect(pool.cidr).toBe('127.2.0.0/16');
    const ips = Array.from({ length: 300 }, () => pool.allocate());
    expect(new Set(ips).size).toBe(300);
    expect(ips[0]).toBe('127.2.0.1');
    expect(ips[254]).toBe('127.2.1.1'); // .0 and .255 are skipped
    expect(ips.every((ip) => pool.contains(ip))).toBe(true);
  });

  test('a released address comes back only after the others', () => {
    const pool = new LoopbackAddressPool(1);
    const first = pool.allocate();
    pool.release(first);
    expect(pool.allocate()).not.toBe(first);
  });

  test('reserve takes addresses of existing pods, refusing foreign or taken ones', () => {
    const pool = new LoopbackAddressPool(1);
    expect(pool.reserve('127.1.0.1')).toBe(true);
    expect(pool.reserve('127.1.0.1')).toBe(false);
    expect(pool.reserve('127.2.0.1')).toBe(false);
    expect(pool.allocate()).toBe('127.1.0.2');
  });
});
