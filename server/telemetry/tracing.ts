import type { Tenant } from '../tenant.js'

/** The attribute that names a span's tenant (its key), and the one with its identifier. */
export const TENANT_ID_ATTRIBUTE = 'tenant.id'
export const TENANT_IDENTIFIER_ATTRIBUTE = 'tenant.identifier'

/**
 * Marks the active span, and the request's own span when the instrumentation
 * names it (`request.opentelemetry()` of @fastify/otel), with a tenant
 * (`<prefix>.id`, `<prefix>.identifier`; prefix `tenant`).
 */
export type SpanTagger = (tenant: Tenant, prefix?: string, request?: unknown) => void

type SpanOf = { setAttribute: (key: string, value: string) => unknown }

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
  const mark = (span: SpanOf, tenant: Tenant, prefix: string): void => {
    span.setAttribute(`${prefix}.id`, tenant.key)
    span.setAttribute(`${prefix}.identifier`, tenant.identifier)
  }
  return (tenant, prefix = 'tenant', request) => {
    const span = trace.getActiveSpan()
    if (span !== undefined) mark(span, tenant, prefix)
    // The request span began before identification; when our hook runs inside
    // a hook span of its own (the instrumentation wraps hooks), it is not the active one.
    const own = (request as { opentelemetry?: () => { span?: SpanOf | null } } | undefined)?.opentelemetry?.().span
    if (own != null && own !== span) mark(own, tenant, prefix)
  }
}
