// Polling with a deadline: every wait in the harness names what it waits for, so a timeout says
// which step of a start or a test got stuck.
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Rejects early (e.g. the process being waited on exited). */
  abort?: Promise<never>;
}

/** Calls check until it returns a value other than undefined/false; throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  let aborted = false;
  const abort = opts.abort?.catch((err: unknown) => {
    aborted = true;
    throw err;
  });
  const loop = async (): Promise<T> => {
    while (!aborted) {
      try {
        const v = await check();
        if (v !== undefined && v !== false) return v;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
        throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${why}`);
      }
      await sleep(opts.intervalMs ?? 200);
    }
    throw new Error(`aborted waiting for ${what}`);
  };
  return abort ? Promise.race([loop(), abort]) : loop();
}
