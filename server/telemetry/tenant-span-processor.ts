import { TENANT_ID_ATTRIBUTE, TENANT_IDENTIFIER_ATTRIBUTE } from './tracing.js'

// Structural types of the OpenTelemetry SDK's span processor contract, so
// fastify-tenancy needs no OpenTelemetry package to build or run.
interface SpanLike {
  spanContext: () => { traceId: string }
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

interface Trace {
  tenant: { id: string, identifier: string | undefined } | null
  open: Set<SpanLike>
  held: SpanLike[]
}

/**
 * Gives every span of a tenant request the `tenant.id` attribute, including
 * the spans that began before the tenant was known (the request span, the
 * hooks before identification): wrap the processor that exports, as in
 * `new BasicTracerProvider({ spanProcessors: [tenantSpanProcessor(new BatchSpanProcessor(exporter))] })`.
 *
 * fastify-tenancy marks the span active when it identifies the tenant; this
 * processor spreads that mark over the trace. Spans that end before it is
 * known are held until it is, or until the trace's last open span ends.
 */
export function tenantSpanProcessor (inner: SpanProcessorLike): SpanProcessorLike {
  const traces = new Map<string, Trace>()
  // Tenants of traces whose spans all ended: a late span (an onResponse hook
  // after the request span) still gets its tenant. Oldest forgotten first.
  const recent = new Map<string, NonNullable<Trace['tenant']>>()
  const remember = (id: string, tenant: Trace['tenant']): void => {
    if (tenant === null) return
    recent.set(id, tenant)
    if (recent.size > 1000) recent.delete(recent.keys().next().value as string)
  }

  const learn = (trace: Trace, span: SpanLike): void => {
    if (trace.tenant !== null) return
    const id = span.attributes[TENANT_ID_ATTRIBUTE]
    if (typeof id !== 'string') return
    const identifier = span.attributes[TENANT_IDENTIFIER_ATTRIBUTE]
    trace.tenant = { id, identifier: typeof identifier === 'string' ? identifier : undefined }
    for (const open of trace.open) tag(open, trace)
    const held = trace.held
    trace.held = []
    for (const ended of held) {
      // An ended span refuses setAttribute; it is not exported yet, so its attributes may still be filled in.
      tagEnded(ended, trace)
      inner.onEnd(ended)
    }
  }

  return {
    onStart (span: SpanLike, parentContext: unknown) {
      const id = span.spanContext().traceId
      let trace = traces.get(id)
      if (trace === undefined) {
        trace = { tenant: recent.get(id) ?? null, open: new Set(), held: [] }
        traces.set(id, trace)
      }
      trace.open.add(span)
      if (trace.tenant !== null) tag(span, trace)
      inner.onStart(span, parentContext)
    },
    onEnd (span: SpanLike) {
      const id = span.spanContext().traceId
      const trace = traces.get(id)
      if (trace === undefined) { inner.onEnd(span); return }
      trace.open.delete(span)
      learn(trace, span)
      if (trace.tenant !== null) {
        tagEnded(span, trace)
        inner.onEnd(span)
      } else {
        trace.held.push(span)
      }
      if (trace.open.size === 0) {
        traces.delete(id)
        remember(id, trace.tenant)
        for (const held of trace.held) inner.onEnd(held)
      }
    },
    async forceFlush () {
      await inner.forceFlush()
    },
    async shutdown () {
      for (const trace of traces.values()) for (const held of trace.held) inner.onEnd(held)
      traces.clear()
      await inner.shutdown()
    }
  }
}

function tag (span: SpanLike, trace: Trace): void {
  if (trace.tenant === null || span.attributes[TENANT_ID_ATTRIBUTE] !== undefined) return
  span.setAttribute(TENANT_ID_ATTRIBUTE, trace.tenant.id)
  if (trace.tenant.identifier !== undefined) span.setAttribute(TENANT_IDENTIFIER_ATTRIBUTE, trace.tenant.identifier)
}

function tagEnded (span: SpanLike, trace: Trace): void {
  if (trace.tenant === null || span.attributes[TENANT_ID_ATTRIBUTE] !== undefined) return
  const attributes = span.attributes as Record<string, unknown>
  attributes[TENANT_ID_ATTRIBUTE] = trace.tenant.id
  if (trace.tenant.identifier !== undefined) attributes[TENANT_IDENTIFIER_ATTRIBUTE] = trace.tenant.identifier
}
