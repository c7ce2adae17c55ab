// Requests this router has open per engine (by base URL), the fresh half of least_loaded.

export class InFlightTracker {
  private readonly counts = new Map<string, number>();

  /** Counts one request against `url`; the returned release is safe to call more than once. */
  begin(url: string): () => void {
    this.counts.set(url, (this.counts.get(url) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(url) ?? 1) - 1;
      if (left <= 0) this.counts.delete(url);
      else this.counts.set(url, left);
    };
  }

  get(url: string): number {
    return this.counts.get(url) ?? 0;
  }
}
