// The classification is visible in debug logs (estimate, threshold, decision, request id), and
// only at debug level.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Writable } from 'node:stream';
import winston from 'winston';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { postJson } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(60_000);

function memoryLogger(level: 'debug' | 'info'): {
  logger: winston.Logger;
  records: Record<string, unknown>[];
} {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    objectMode: true,
    write(info: Record<string, unknown>, _enc, done) {
      records.push(info);
      done();
    },
  });
  return {
    logger: winston.createLogger({ level, transports: [new winston.transports.Stream({ stream: sink })] }),
    records,
  };
}

let decode: RunningEngine;
beforeAll(async () => {
  decode = await startEngine({ role: 'decode', connector: 'nixl' });
});
afterAll(async () => {
  await decode?.stop();
});

describe.each(['debug', 'info'] as const)('router at log level %s', (level) => {
  let router: RunningRouter;
  let records: Record<string, unknown>[];
  beforeAll(async () => {
    const mem = memoryLogger(level);
    records = mem.records;
    router = await startRouter({ kvNotifyPort: 0, logger: mem.logger });
    const applied = router.applyConfig(
      configDoc([{ connector: 'nixl', routingThreshold: 100, prefill: [], decode: [decode] }]),
    );
    expect(applied.ok).toBe(true);
  });
  afterAll(async () => {
    await router?.stop();
  });

  it(
    level === 'debug' ? 'logs the estimate and the decision' : 'logs no per-request debug record',
    async () => {
      const reply = await postJson(
        `${router.url}/v1/completions`,
        { model: 'sim-model', prompt: 'x'.repeat(40), max_tokens: 2 },
        { 'x-request-id': `log-${level}` },
      );
      expect(reply.status).toBe(200);
      const classified = records.filter((r) => r['message'] === 'request classified');
      if (level === 'info') {
        expect(classified).toEqual([]);
        return;
      }
      expect(classified).toEqual([
        expect.objectContaining({
          level: 'debug',
          requestId: `log-${level}`,
          estimatedTokens: 10,
          routingThreshold: 100,
          decision: 'direct',
        }),
      ]);
    },
  );
});
