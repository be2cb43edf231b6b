import { CliUsageError } from '../errors.js'

/** Commander's collector for a list option given once with commas (`--tenants=a,b`) or repeated (`--tenants a --tenants b`). */
export function collectList (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((v) => v.trim())]
}

/** A list option's names, refusing empty ones: `--tenants=` must not quietly mean every tenant. */
export function names (option: string, values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined
  const clean = values.filter((v) => v.length > 0)
  if (clean.length === 0 || clean.length !== values.length) throw new CliUsageError(`${option} takes identifiers or keys separated by commas, without empty ones.`)
  return [...new Set(clean)]
}

/** `--concurrency` (or another count flag): a whole number of at least 1. */
export function concurrency (value: string | undefined, fallback: number, flag = '--concurrency'): number {
  if (value === undefined) return fallback
  const text = value.trim()
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new CliUsageError(`${flag} must be a whole number of at least 1, not "${value.slice(0, 40)}".`)
  }
  return Number(text)
}
