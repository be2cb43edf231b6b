import { PassThrough } from 'node:stream'
import { createReadStream } from 'node:fs'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { field } from '../ui/forms.js'
import { UUID_PATTERN } from '../../tenant.js'
import { BundleUploads } from './bundle-uploads.js'

const MOVE = { admin: 'move_tenants' as const }
/** What a bundle or an identifier can be refused with: said on the form, never a 500. */
const REFUSALS = new Set(['FST_TENANCY_INVALID_BUNDLE', 'FST_TENANCY_SCHEMA_TOO_NEW', 'FST_TENANCY_IDENTIFIER_TAKEN', 'FST_TENANCY_INVALID_IDENTIFIER', 'FST_TENANCY_RESERVED_IDENTIFIER'])

/**
 * Export (download) a tenant as a bundle, and import one as a new tenant,
 * optionally under another identifier: the admin side of `tenants:export`
 * and `tenants:import`.
 */
export async function bundleRoutes (app: FastifyInstance, ctx: AdminContext, uploads: BundleUploads): Promise<void> {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/tenants`

  app.get('/tenants/:key/export', { config: MOVE }, async (request, reply) => {
    const key = (request.params as { key: string }).key
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) return await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    if (tenant.status !== 'active' && tenant.status !== 'suspended') {
      return await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type: 'error', text: `Tenant ${tenant.identifier} is ${tenant.status}: only a tenant with a database can be exported.` })
    }
    await ctx.audit.recordFor(request, 'tenant.export', { tenant: { key: tenant.key, identifier: tenant.identifier } })
    const out = new PassThrough()
    // One snapshot, streamed as it is read; a failure half-way ends the download broken rather than passing for a whole bundle.
    tenancy.bundles.export(tenant.key, out).then(() => { out.end() }, (error: Error) => {
      request.log.error({ err: error, tenant: tenant.key }, 'fastify-tenancy admin: export failed')
      out.destroy(error)
    })
    return await reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', `attachment; filename="${tenant.identifier}.tenancy"`)
      .header('cache-control', 'no-store')
      .send(out)
  })

  const form = async (
    request: FastifyRequest, reply: FastifyReply, values: { as: string, host: string }, error: string | null, status = 200
  ): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'moves/import', 'Import a tenant', { values, hosts: ctx.hosts, defaultHost: ctx.defaultHost, error }, status)

  app.get('/tenants/import', { config: MOVE }, async (request, reply) => await form(request, reply, { as: '', host: ctx.defaultHost }, null))

  await app.register(async (upload) => {
    await uploads.accept(upload)
    upload.post('/tenants/import', { config: MOVE }, async (request, reply) => {
      const values = { as: field(request.body, 'as').trim().toLowerCase().slice(0, 64), host: field(request.body, 'host') }
      if (!ctx.hosts.includes(values.host)) values.host = ctx.defaultHost
      const file = uploads.fileOf(request)
      if (file === null) return await form(request, reply, values, 'Choose a bundle file (made by Export or tenants:export).', 422)
      try {
        const tenant = await tenancy.bundles.import(createReadStream(file), { host: values.host, ...(values.as === '' ? {} : { as: values.as }) })
        await ctx.audit.recordFor(request, 'tenant.import', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { host: values.host } })
        return await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type: 'success', text: `Imported ${tenant.identifier} on host ${values.host}.` })
      } catch (error) {
        const code = (error as { code?: string }).code ?? ''
        if (!REFUSALS.has(code)) throw error
        return await form(request, reply, values, (error as Error).message, 422)
      }
    })
  })
}
