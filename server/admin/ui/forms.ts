/** Field errors of a submitted form, by field name; empty when the form is valid. */
export type FieldErrors = Record<string, string>

export interface TextRule {
  label: string
  required?: boolean
  max?: number
  min?: number
  pattern?: RegExp
  patternMessage?: string
}

/** Reads a text field from a parsed form body: trimmed, one value, never an array or object. */
export function field (body: unknown, name: string): string {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined
  if (Array.isArray(value)) return typeof value[0] === 'string' ? value[0].trim() : ''
  return typeof value === 'string' ? value.trim() : ''
}

/** Reads a field that may repeat (checkbox lists, multi-selects). */
export function fields (body: unknown, name: string): string[] {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value]
  return list.filter((v): v is string => typeof v === 'string').map((v) => v.trim()).filter((v) => v.length > 0)
}

/** Checks one text value; records a message in `errors` under `name` when it breaks a rule. */
export function check (errors: FieldErrors, name: string, value: string, rule: TextRule): string {
  if (value.length === 0) {
    if (rule.required === true) errors[name] = `${rule.label} is required.`
    return value
  }
  if (rule.max !== undefined && value.length > rule.max) errors[name] = `${rule.label} must be at most ${rule.max} characters.`
  else if (rule.min !== undefined && value.length < rule.min) errors[name] = `${rule.label} must be at least ${rule.min} characters.`
  else if (rule.pattern !== undefined && !rule.pattern.test(value)) errors[name] = rule.patternMessage ?? `${rule.label} has the wrong format.`
  return value
}

export const EMAIL = /^[^\s@<>"']{1,64}@[a-z0-9.-]{1,189}\.[a-z]{2,63}$/i

export function hasErrors (errors: FieldErrors): boolean {
  return Object.keys(errors).length > 0
}
