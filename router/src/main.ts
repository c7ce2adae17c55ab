#!/usr/bin/env node
// The router process: `npm run router -- FLAGS` (see --help).
import { CliError, helpText, parseCli } from './cli.js';
import { startRouter } from './server.js';

async function main(): Promise<void> {
  let cli;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`disagg-router: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cli.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const router = await startRouter(cli.options);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`disagg-router: ${signal}: draining\n`);
    // Kubernetes sends SIGTERM then waits terminationGracePeriodSeconds (30 s by default).
    void router.stop({ graceMs: 20_000 }).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`disagg-router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
