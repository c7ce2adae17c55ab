// The simulator's private KV transports (NIXL side channel, LMCache receiver ports) speak one JSON
// object per line over TCP; this is their server half.
import net from 'node:net';

export type Msg = Record<string, unknown>;

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/** Answers every JSON line with handle()'s reply; an unparsable line gets {ok:false,error:'bad message'}. */
export function serveJsonLines(host: string, port: number, handle: (m: Msg) => Msg): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply: Msg;
        try {
          reply = handle(JSON.parse(line) as Msg);
        } catch {
          reply = { ok: false, error: 'bad message' };
        }
        sock.write(JSON.stringify(reply) + '\n');
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            for (const sock of sockets) sock.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
