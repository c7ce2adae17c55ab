// The routing decision: disaggregate (prefill on a prefiller, decode on a decoder) or send the
// request straight to a decoder, which prefills locally.

export type RouteDecision = 'dpd' | 'direct';

/** 0 = always disaggregate; otherwise disaggregate when the estimate reaches the threshold (>=). */
export function decideRoute(estimatedTokens: number, routingThreshold: number): RouteDecision {
  if (routingThreshold <= 0) return 'dpd';
  return estimatedTokens >= routingThreshold ? 'dpd' : 'direct';
}
