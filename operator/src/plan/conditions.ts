// metav1.Condition bookkeeping: lastTransitionTime moves only when the status value changes.
import type { Condition, ConditionStatus } from '../api/types.js';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function setCondition(
  previous: readonly Condition[] | undefined,
  next: ConditionInput,
  generation: number | undefined,
  now: Date,
): Condition {
  const old = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : metaTime(now);
  const c: Condition = { ...next, lastTransitionTime };
  if (generation !== undefined) c.observedGeneration = generation;
  return c;
}

export function findCondition(conds: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conds?.find((c) => c.type === type);
}

/** metav1.Time: RFC 3339 in whole seconds. */
export function metaTime(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
