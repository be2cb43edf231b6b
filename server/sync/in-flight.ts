/** Work under way in this process (deliveries after a commit, forwards), awaited by settle() and close(). */
export class InFlight {
  private readonly work = new Set<Promise<unknown>>()

  /** Runs `work` as work under way; its result (or error) passes through. */
  async track<T> (work: Promise<T>): Promise<T> {
    this.work.add(work)
    try {
      return await work
    } finally {
      this.work.delete(work)
    }
  }

  get size (): number {
    return this.work.size
  }

  /** Waits for the work under way now to end, however it ends. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.work])
  }
}
