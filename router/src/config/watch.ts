// Keeps the router on the content of --config FILE: re-read when the file changes (the directory
// is watched, so editors' rename-replace and Kubernetes ConfigMap symlink swaps are seen) and on
// SIGHUP. A bad file is logged and ignored; the last good config stays in force.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../logger.js';
import { readConfigFile } from './from-file.js';
import type { ConfigStore } from './store.js';

/** Coalesces the burst of fs events one save produces. */
const DEBOUNCE_MS = 100;

export class ConfigFileWatcher {
  private readonly path: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastText: string | undefined;
  private loading: Promise<boolean> = Promise.resolve(true);

  constructor(
    path: string,
    private readonly store: ConfigStore,
    private readonly logger: Logger,
    private readonly onRejected: () => void = () => {},
  ) {
    this.path = resolve(path);
  }

  /** Reads and applies the file; `force` re-applies unchanged text (SIGHUP). Resolves to success. */
  reload(reason: string, force = false): Promise<boolean> {
    this.loading = this.loading.then(() => this.load(reason, force));
    return this.loading;
  }

  start(): void {
    if (this.watcher) return;
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      // ConfigMap volumes swap a `..data` symlink rather than touching the file itself.
      if (file !== null && file !== name && !String(file).startsWith('..')) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload('file changed'), DEBOUNCE_MS);
    });
    this.watcher.on('error', (err) =>
      this.logger.warn('config watch error', { path: this.path, error: err.message }),
    );
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
  }

  private async load(reason: string, force: boolean): Promise<boolean> {
    let text: string;
    let doc: unknown;
    try {
      ({ text, doc } = await readConfigFile(this.path));
    } catch (err) {
      this.onRejected();
      this.logger.error('config file rejected: cannot read or parse it; keeping the last good config', {
        path: this.path,
        reason,
        error: (err as Error).message,
      });
      return false;
    }
    if (!force && text === this.lastText) return true;
    const result = this.store.apply(doc, 'file');
    if (!result.ok) {
      this.onRejected();
      this.logger.error('config file rejected: invalid document; keeping the last good config', {
        path: this.path,
        reason,
        errors: result.errors,
      });
      return false;
    }
    this.lastText = text;
    return true;
  }
}
