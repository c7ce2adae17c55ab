// A bearer token read from a file and re-read when the file changes: projected ServiceAccount
// tokens are rotated on disk by the kubelet (an atomic symlink swap) well before they expire.
import { readFileSync, statSync } from 'node:fs';

export interface TokenFileOptions {
  /** How often at most the file is stat()ed for a change. */
  checkMs?: number;
  /** Re-read at least this often even if stat() shows no change (coarse mtimes). */
  maxAgeMs?: number;
  now?: () => number;
}

export class TokenFile {
  private token = '';
  private stamp = '';
  private checkedAt = -Infinity;
  private readAt = -Infinity;
  private readonly checkMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    readonly path: string,
    opts: TokenFileOptions = {},
  ) {
    this.checkMs = opts.checkMs ?? 1000;
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The current token; throws if the file cannot be read and no token was read before. */
  get(): string {
    const now = this.now();
    if (now - this.checkedAt < this.checkMs && this.token) return this.token;
    this.checkedAt = now;
    try {
      const st = statSync(this.path);
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stamp !== this.stamp || now - this.readAt >= this.maxAgeMs || !this.token) {
        const token = readFileSync(this.path, 'utf8').trim();
        if (!token) throw new Error('the file is empty');
        this.token = token;
        this.stamp = stamp;
        this.readAt = now;
      }
    } catch (err) {
      // Mid-rotation hiccup: keep using the token we have; the next check tries again.
      if (!this.token) throw new Error(`cannot read token file ${this.path}: ${(err as Error).message}`);
    }
    return this.token;
  }

  /** The server refused the token: check the file again on the next request. */
  invalidate(): void {
    this.checkedAt = -Infinity;
    this.readAt = -Infinity;
  }
}
