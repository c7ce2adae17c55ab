// Talks to a router process started with --inspect: forces a full GC and reads
// process.memoryUsage(), so the memory measurement sees live bytes rather than garbage.

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface Inspector {
  /** Full, compacting garbage collection in the router. */
  collectGarbage(): Promise<void>;
  memoryUsage(): Promise<MemoryUsage>;
  /** Any Chrome DevTools Protocol method. */
  send(method: string, params?: Record<string, unknown>): Promise<unknown>;
  /** Evaluates an expression that returns a string in the router's global scope. */
  evaluate(expression: string): Promise<string>;
  close(): void;
}

export async function connectInspector(wsUrl: string): Promise<Inspector> {
  const ws = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${wsUrl}`)), {
      once: true,
    });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.addEventListener('message', (ev: MessageEvent) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(msg.error.message));
    else p?.resolve(msg.result);
  });
  const call = (method: string, params: Record<string, unknown> = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const evaluate = async (expression: string): Promise<string> => {
    const r = (await call('Runtime.evaluate', { expression, returnByValue: true })) as {
      result: { value?: unknown };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) {
      throw new Error(`inspector: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return String(r.result.value);
  };
  return {
    collectGarbage: async () => {
      await call('HeapProfiler.collectGarbage');
    },
    memoryUsage: async () =>
      JSON.parse(await evaluate('JSON.stringify(process.memoryUsage())')) as MemoryUsage,
    evaluate,
    send: call,
    close: () => ws.close(),
  };
}
