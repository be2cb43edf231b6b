/** The `sync.retry` option: first wait and longest wait after a failed try, in ms. */
export interface RetryOptions {
  minDelayMs: number
  maxDelayMs: number
}

/**
 * The one backoff of syncing (deliveries and forwards alike): doubling from
 * `minDelayMs` up to `maxDelayMs`, with ±20 % jitter so that tries from many
 * instances spread out. `attempts` counts the failed tries so far (1 first).
 */
export function backoffMs (attempts: number, retry: RetryOptions, random: () => number = Math.random): number {
  const base = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** Math.min(30, Math.max(0, attempts - 1)))
  return Math.round(base * (0.8 + random() * 0.4))
}
