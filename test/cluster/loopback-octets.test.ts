// Machine-wide claims on 127.N.0.0/16 blocks, so concurrent clusters never share pod IPs.
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimedOctets, claimOctets, releaseOctets } from './loopback-octets.js';

const dir = mkdtempSync(join(tmpdir(), 'octets-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('claimOctets', () => {
  test('live claims are never handed out twice; released ones come back', () => {
    const a = claimOctets(2, process.pid, dir);
    const b = claimOctets(2, process.pid, dir);
    expect(a).toEqual([1, 2]);
    expect(b).toEqual([3, 4]);
    expect([...claimedOctets(dir).keys()].sort()).toEqual([1, 2, 3, 4]);
    releaseOctets(a, process.pid, dir);
    expect(claimOctets(1, process.pid, dir)).toEqual([1]);
    releaseOctets([1, 3, 4], process.pid, dir);
  });

  test('a claim of a process that is gone is taken over', () => {
    const deadPid = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    writeFileSync(join(dir, '1'), String(deadPid));
    expect(claimOctets(1, process.pid, dir)).toEqual([1]);
  });

  test('release leaves claims of other owners alone', () => {
    writeFileSync(join(dir, '9'), String(process.ppid));
    releaseOctets([9], process.pid, dir);
    expect(claimedOctets(dir).get(9)).toBe(process.ppid);
  });
});
