import { InvalidIdentifierError } from '../errors.js'
import { isValidIdentifier } from '../tenant.js'

/** Checks an identifier taken from a request; `source` names where it came from in the error. */
export function checkedIdentifier (value: unknown, source: string): string {
  if (!isValidIdentifier(value)) throw new InvalidIdentifierError(source)
  return value
}
