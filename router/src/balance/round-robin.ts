// Round robin over a pool: the caller owns the counter, so the choice is a plain function.

export function pickRoundRobin<T>(candidates: readonly T[], counter: number): T | undefined {
  if (candidates.length === 0) return undefined;
  return candidates[modulo(counter, candidates.length)];
}

export function modulo(n: number, m: number): number {
  return ((n % m) + m) % m;
}
