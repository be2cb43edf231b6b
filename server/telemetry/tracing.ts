import type { Tenant } from '../tenant.js'

/** The attribute that names a span's tenant (its key), and the one with its identifier. */
export const TENANT_ID_ATTRIBUTE = 'tenant.id'
export const TENANT_IDENTIFIER_ATTRIBUTE = 'tenant.identifier'

/** Marks the active span with a tenant (`<prefix>.id`, `<prefix>.identifier`; prefix `tenant`). */
export type SpanTagger = (tenant: Tenant, prefix?: string) => void

/** The little of `@opentelemetry/api` used here, so the package stays an optional peer. */
interface TraceApi {
  getActiveSpan: () => { setAttribute: (key: string, value: string) => unknown } | undefined
}

/**
 * Loads `@opentelemetry/api` when the app has it installed; without it the
 * tracing costs nothing. Returns a function that marks the active span with
 * a tenant.
 */
export async function loadSpanTagger (): Promise<SpanTagger | null> {
  let api: { trace: TraceApi } | null
  try {
    const name = '@opentelemetry/api'
    api = await import(name) as { trace: TraceApi }
  } catch {
    api = null
  }
  if (api === null) return null
  const trace = api.trace
  return (tenant, prefix = 'tenant') => {
    const span = trace.getActiveSpan()
    if (span === undefined) return
    span.setAttribute(`${prefix}.id`, tenant.key)
    span.setAttribute(`${prefix}.identifier`, tenant.identifier)
  }
}
