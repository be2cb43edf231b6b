import { TENANT_ID_ATTRIBUTE, TENANT_IDENTIFIER_ATTRIBUTE } from './tracing.js'
import { activeTenant } from './span-tenants.js'

// Structural types of the OpenTelemetry SDK's span processor contract, so
// fastify-tenancy needs no OpenTelemetry package to build or run.
interface SpanLike {
  spanContext: () => { spanId: string }
  /** SDK 2.x; 1.x has `parentSpanId`. */
  readonly parentSpanContext?: { spanId: string }
  readonly parentSpanId?: string
  readonly attributes: Record<string, unknown>
  setAttribute: (key: string, value: string) => unknown
}
/** The SDK's `SpanProcessor` (from `@opentelemetry/sdk-trace-base`), as this wrapper needs it. */
export interface SpanProcessorLike {
  onStart: (span: any, parentContext: any) => void
  onEnd: (span: any) => void
  forceFlush: () => Promise<void>
  shutdown: () => Promise<void>
}

/** A span of this process that has not ended, and its ended descendants that wait for its tenant. */
interface Open {
  parentId: string | undefined
  held: SpanLike[]
}

interface SpanTenant { id: string, identifier: string | undefined }

/**
 * Gives every span the `tenant.id` attribute of its own request's tenant,
 * and no other: wrap the processor that exports, as in
 * `new BasicTracerProvider({ spanProcessors: [tenantSpanProcessor(new BatchSpanProcessor(exporter))] })`.
 *
 * A span is tagged when it starts, from the tenant context active then
 * (fastify-tenancy's AsyncLocalStorage), so requests of several tenants
 * that share one trace id (a gateway calling them) each keep their own. The
 * spans that began before the tenant was known get it from their parent:
 * fastify-tenancy marks the request's span when it identifies the tenant,
 * and a span that ended without a tenant while its parent was still open is
 * held until that parent ends, then takes the parent's tenant (or none).
 * Nothing is learnt per trace.
 */
export function tenantSpanProcessor (inner: SpanProcessorLike): SpanProcessorLike {
  const open = new Map<string, Open>()

  return {
    onStart (span: SpanLike, parentContext: unknown) {
      const tenant = activeTenant()
      if (tenant !== null && span.attributes[TENANT_ID_ATTRIBUTE] === undefined) {
        span.setAttribute(TENANT_ID_ATTRIBUTE, tenant.key)
        span.setAttribute(TENANT_IDENTIFIER_ATTRIBUTE, tenant.identifier)
      }
      open.set(span.spanContext().spanId, { parentId: span.parentSpanContext?.spanId ?? span.parentSpanId, held: [] })
      inner.onStart(span, parentContext)
    },
    onEnd (span: SpanLike) {
      const id = span.spanContext().spanId
      const entry = open.get(id)
      open.delete(id)
      const tenant = tenantOf(span)
      const parent = entry?.parentId === undefined ? undefined : open.get(entry.parentId)
      if (tenant === null && parent !== undefined) {
        // Its parent may still learn a tenant (the request span, when the tenant is identified after this span ended).
        parent.held.push(span, ...(entry?.held ?? []))
        return
      }
      for (const held of entry?.held ?? []) {
        if (tenant !== null) tagEnded(held, tenant)
        inner.onEnd(held)
      }
      inner.onEnd(span)
    },
    async forceFlush () {
      await inner.forceFlush()
    },
    async shutdown () {
      for (const entry of open.values()) for (const held of entry.held) inner.onEnd(held)
      open.clear()
      await inner.shutdown()
    }
  }
}

function tenantOf (span: SpanLike): SpanTenant | null {
  const id = span.attributes[TENANT_ID_ATTRIBUTE]
  if (typeof id !== 'string') return null
  const identifier = span.attributes[TENANT_IDENTIFIER_ATTRIBUTE]
  return { id, identifier: typeof identifier === 'string' ? identifier : undefined }
}

function tagEnded (span: SpanLike, tenant: SpanTenant): void {
  if (span.attributes[TENANT_ID_ATTRIBUTE] !== undefined) return
  // An ended span refuses setAttribute; it is not exported yet, so its attributes may still be filled in.
  const attributes = span.attributes as Record<string, unknown>
  attributes[TENANT_ID_ATTRIBUTE] = tenant.id
  if (tenant.identifier !== undefined) attributes[TENANT_IDENTIFIER_ATTRIBUTE] = tenant.identifier
}
