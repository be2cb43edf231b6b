import { checkDomain } from '../../lifecycle/tenant-input.js'
import { isValidIdentifier, UUID_PATTERN } from '../../tenant.js'
import { check, field, type FieldErrors } from '../ui/forms.js'

export interface TenantFormValues {
  identifier: string
  name: string
  domains: string
  cluster: string
  /** The edit form: the values it was opened with, so a save changes only what this form changed. */
  was?: { identifier: string, name: string, cluster: string }
}

/** Reads and checks the tenant form; every problem becomes a message next to its field. */
export function readTenantForm (
  body: unknown, centralDomains: readonly string[], errors: FieldErrors, withDomains: boolean
): TenantFormValues & { domainList: string[] } {
  const identifier = check(errors, 'identifier', field(body, 'identifier'), { label: 'Identifier', required: true, max: 63 })
  if (errors.identifier === undefined && !isValidIdentifier(identifier)) {
    errors.identifier = 'Use 1 to 63 lowercase letters, digits and dashes, not starting or ending with a dash.'
  }
  const name = check(errors, 'name', field(body, 'name'), { label: 'Name', required: true, max: 255 })
  const domains = field(body, 'domains').slice(0, 5000)
  const domainList = withDomains ? [...new Set(domains.split(/[\s,]+/).map((d) => d.trim()).filter((d) => d.length > 0))] : []
  if (domainList.length > 20) errors.domains = 'At most 20 domains at once.'
  for (const domain of domainList) {
    try {
      checkDomain(domain, centralDomains)
    } catch (error) {
      errors.domains = (error as Error).message
      break
    }
  }
  const cluster = field(body, 'cluster')
  if (cluster !== '' && !UUID_PATTERN.test(cluster)) errors.cluster = 'Choose a Tenant Cluster from the list.'
  return { identifier, name, domains, cluster, domainList }
}
