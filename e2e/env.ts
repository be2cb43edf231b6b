// Ports of their own for each run, chosen once in Playwright's main process
// (its workers inherit the environment), so a server left over from another
// run can never answer in this one's place.
process.env.E2E_PORT ??= String(20000 + Math.floor(Math.random() * 15000))
process.env.E2E_PG_PORT ??= String(40000 + Math.floor(Math.random() * 15000))

/** Where the e2e demo listens, its database server, and its first admin. */
export const E2E = {
  port: Number(process.env.E2E_PORT ?? 3931),
  pgPort: Number(process.env.E2E_PG_PORT ?? 54392),
  dataDir: '.tmp/e2e-data',
  adminEmail: 'e2e-admin@example.test',
  adminPassword: 'e2e admin password 123'
}

export const centralUrl = (): string => `http://localhost:${E2E.port}`
export const serverUrl = (): string => `postgres://postgres:postgres@127.0.0.1:${E2E.pgPort}/postgres`
export const centralDbUrl = (): string => `postgres://postgres:postgres@127.0.0.1:${E2E.pgPort}/fastify_tenancy_demo`
