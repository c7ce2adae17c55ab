// Pod address allocation of loopback nodes (pure).
import { describe, expect, test } from '@jest/globals';
import { LoopbackAddressPool, nodePodCidr } from './loopback-addresses.js';

describe('LoopbackAddressPool', () => {
  test('node i hands out distinct addresses of 127.(i+1).0.0/16', () => {
    expect(nodePodCidr(0)).toBe('127.1.0.0/16');
    const pool = new LoopbackAddressPool(1);
    const ips = Array.from({ length: 300 }, () => pool.allocate());
    expect(new Set(ips).size).toBe(300);
    expect(ips[0]).toBe('127.2.0.1');
    expect(ips[254]).toBe('127.2.1.1'); // .0 and .255 are skipped
    expect(ips.every((ip) => pool.contains(ip))).toBe(true);
  });

  test('a released address comes back only after the others', () => {
    const pool = new LoopbackAddressPool(0);
    const first = pool.allocate();
    pool.release(first);
    expect(pool.allocate()).not.toBe(first);
  });

  test('reserve takes addresses of existing pods, refusing foreign or taken ones', () => {
    const pool = new LoopbackAddressPool(0);
    expect(pool.reserve('127.1.0.1')).toBe(true);
    expect(pool.reserve('127.1.0.1')).toBe(false);
    expect(pool.reserve('127.2.0.1')).toBe(false);
    expect(pool.allocate()).toBe('127.1.0.2');
  });
});
