/** One measured figure, as `npm run bench -- --json` prints it. */
export interface Figure {
  name: string
  value: number
  unit: string
  /** A word on how it was measured, for the table. */
  note?: string
}

/** What every benchmark module gets: the URL of a PostgreSQL server to make databases on, and a logger that keeps stdout clean. */
export interface BenchContext {
  serverUrl: string
  log: (line: string) => void
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export function round (value: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
