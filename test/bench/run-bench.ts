// The benchmarks' process lifecycle: run main, always clean up (on success, failure, Ctrl-C and
// SIGTERM), and exit with main's code, 1 on failure or 130 when interrupted.
export function runBench(
  main: () => Promise<number>,
  cleanup: () => Promise<void>,
  say: (line: string) => void,
): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      say(`${signal}: stopping ...`);
      void cleanup().then(() => process.exit(130));
    });
  }
  main()
    .then(async (code) => {
      await cleanup();
      process.exit(code);
    })
    .catch(async (err: unknown) => {
      if (interrupted) return;
      say(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await cleanup();
      process.exit(1);
    });
}
