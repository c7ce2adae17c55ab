// Starts one simulated engine in this process: connector listeners first, then the HTTP listener.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
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
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(cfg.port, cfg.host, (err?: Error) => (err ? reject(err) : resolve(s)));
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
