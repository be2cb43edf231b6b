// The plugin's options, shared by the app and the fastify-tenancy command
// (tenancy.config.mjs), so both migrate the same tenant schema.
import { fileURLToPath } from 'node:url'
import { Invoice } from './invoice.js'

export function tenancyOptions (env = process.env) {
  return {
    database: {
      url: env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/invoices',
      // Each tenant gets a database named <prefix><key>.
      prefix: env.TENANT_PREFIX ?? 'invoices_tenant_'
    },
    tenantEntities: [Invoice],
    tenantMigrations: { path: fileURLToPath(new URL('../migrations/tenant', import.meta.url)) },
    centralDomains: [env.CENTRAL_DOMAIN ?? 'localhost'],
    identification: ['subdomain', 'domain'],
    migrateCentral: true,
    provisioning: { spares: 0 }
  }
}
