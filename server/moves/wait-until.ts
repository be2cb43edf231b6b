/**
 * Polls `check` every `everyMs` until it returns something other than
 * undefined, and returns that; after `timeoutMs` it throws `onTimeout()`.
 * The moves wait for PostgreSQL's state this way (a subscription's copy, its
 * position, a database's last connections), never for a fixed time.
 */
export async function waitUntil<T> (check: () => Promise<T | undefined>, options: { timeoutMs: number, everyMs?: number, onTimeout: () => Error }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() >= deadline) throw options.onTimeout()
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 10))
  }
}
