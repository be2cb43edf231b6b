import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** What a person reads for each refusal of a tenant request (the JSON body keeps its code for programs). */
const PAGES: Record<string, { title: string, text: string }> = {
  FST_TENANCY_TENANT_SUSPENDED: { title: 'This site is suspended', text: 'Its owner\'s account is suspended for now. If it is yours, contact the operator of this service.' },
  FST_TENANCY_TENANT_INACTIVE: { title: 'This site is not ready', text: 'It is being set up, or its setup failed. Try again in a moment; if it lasts, contact the operator of this service.' },
  FST_TENANCY_UNKNOWN_TENANT: { title: 'There is no site here', text: 'No tenant answers at this address. Check the address for a typing mistake; a site that was renamed long ago may have moved for good.' },
  FST_TENANCY_NOT_IDENTIFIED: { title: 'There is no site here', text: 'This address names no tenant. Open a tenant\'s own address instead.' }
}

/** True when the client asks for HTML before (or instead of) JSON, as browsers do. */
export function prefersHtml (accept: string | undefined): boolean {
  if (accept === undefined) return false
  const html = accept.indexOf('text/html')
  if (html < 0) return false
  const json = accept.indexOf('application/json')
  return json < 0 || html < json
}

/**
 * The demo's error handler for tenant requests: a browser visiting a
 * suspended, unready or unknown tenant gets a small HTML page with the same
 * status; anything else (API clients, other errors) gets Fastify's JSON as
 * before. A tenant in maintenance already gets its page from the core.
 * An app copies this, or sets its own error handler, to word the pages its way.
 */
export function tenantErrorPages (app: FastifyInstance): void {
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const page = error.code === undefined ? undefined : PAGES[error.code]
    const status = error.statusCode ?? 500
    if (status >= 500 && page === undefined) request.log.error({ err: error }, 'request failed')
    if (page === undefined || !prefersHtml(request.headers.accept)) return await reply.status(status).send(error)
    const html = await reply.viewAsync('error.eta', { title: page.title, text: page.text, code: error.code, status })
    return await reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html)
  })
}
