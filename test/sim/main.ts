// CLI entry of the engine simulator: parse flags, start, print the listening line, stop on signals.
import { ConfigError, helpText, parseConfig } from './config.js';
import { startSimServer } from './server.js';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parseConfig(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`engine-sim: ${e.message}\n${helpText()}`);
      process.exit(2);
    }
    throw e;
  }
  if (cfg === 'help') {
    process.stdout.write(helpText());
    return;
  }
  const sim = await startSimServer(cfg);
  // A stray socket error must not take down an engine that other processes' tests depend on.
  process.on('uncaughtException', (e) => {
    process.stderr.write(
      JSON.stringify({ level: 'error', message: 'uncaught exception', error: e.stack }) + '\n',
    );
  });
  process.stdout.write(JSON.stringify(sim.info) + '\n');
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Exit even if a connection refuses to close.
    setTimeout(() => process.exit(0), 2000).unref();
    sim.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (cfg.exitWithParent) {
    // The harness holds our stdin open; EOF means it is gone, so do not outlive it.
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`engine-sim: failed to start: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
