// Starts one simulated engine in this process: connector listeners first, then the HTTP listener.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createExpressServer } from '../../router/src/express-server.js';
import type { SimConfig } from './config.js';
import { SimEngine } from './engine.js';
import { createApp } from './openai-api.js';

export interface ListeningInfo {
  event: 'listening';
  url: string;
  port: number;
  nixlSideChannelPort: number | null;
  lmcacheInitPorts: number[];
  lmcacheAllocPorts: number[];
}

export interface SimServer {
  engine: SimEngine;
  info: ListeningInfo;
  close(): Promise<void>;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSimServer(cfg: SimConfig): Promise<SimServer> {
  const engine = new SimEngine(cfg);
  await engine.start();
  const app = createApp(engine);
  // Requests born with Express's prototypes (see express-server.ts): a plain Express app keeps ~15 KB
  // per request past each scavenge, and its GC pauses were most of the benchmark's engine baseline p99.
  const server: Server = createExpressServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Streams can idle for long under the latency model; never let Node's defaults cut them.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  const port = (server.address() as AddressInfo).port;
  const lm = engine.lmcachePorts;
  const info: ListeningInfo = {
    event: 'listening',
    url: `http://${urlHost(cfg.host)}:${port}`,
    port,
    nixlSideChannelPort: engine.nixlSideChannelPort,
    lmcacheInitPorts: lm.init,
    lmcacheAllocPorts: lm.alloc,
  };
  return {
    engine,
    info,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await engine.close();
    },
  };
}
