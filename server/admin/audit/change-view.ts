/** One line of an audit entry's change: a field, what it was (if it had a value before) and what it became. */
export interface ChangeLine {
  field: string
  /** Null when the entry records a value without a before (a creation, a summary). */
  before: string | null
  after: string
}

const text = (value: unknown): string => {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'string') return value === '' ? '(empty)' : value
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.map(text).join(', ')
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Words for field names as recorded (`clusterId` reads "cluster id"). */
const label = (field: string): string => field.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase()

/**
 * An audit entry's change as lines a person reads: `{ name: { from, to } }`
 * becomes "name: Acme → Acme Corp"; a plain value is shown as it was
 * recorded. Unchanged `{ from, to }` pairs are left out.
 */
export function changeLines (change: Record<string, unknown>): ChangeLine[] {
  const lines: ChangeLine[] = []
  for (const [field, value] of Object.entries(change)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'from' in value && 'to' in value) {
      const { from, to } = value as { from: unknown, to: unknown }
      if (JSON.stringify(from) === JSON.stringify(to)) continue
      lines.push({ field: label(field), before: text(from), after: text(to) })
    } else {
      lines.push({ field: label(field), before: null, after: text(value) })
    }
  }
  return lines
}
