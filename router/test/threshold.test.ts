import { describe, expect, it } from '@jest/globals';
import { decideRoute } from '../src/classify/threshold.js';

describe('decideRoute', () => {
  it.each([
    ['below the threshold goes direct', 99, 100, 'direct'],
    ['equal to the threshold is disaggregated', 100, 100, 'dpd'],
    ['above the threshold is disaggregated', 101, 100, 'dpd'],
    ['threshold 0 always disaggregates, even an empty prompt', 0, 0, 'dpd'],
    ['threshold 0 always disaggregates a long prompt', 50_000, 0, 'dpd'],
    ['an empty prompt under a positive threshold goes direct', 0, 1, 'direct'],
  ])('%s', (_name, estimate, threshold, expected) => {
    expect(decideRoute(estimate, threshold)).toBe(expected);
  });
});
