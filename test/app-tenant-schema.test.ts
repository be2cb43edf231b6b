import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, writeFile, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql, urlFor, type CentralDatabase } from './helpers/database.js'
import { prepareShared } from './helpers/shared.js'
import { makeTenants } from './helpers/tenants.js'
import { run, tenantLines } from './helpers/cli.js'
import { addInvoiceMigration, INVOICE_MIGRATIONS, invoiceConfig, invoiceMigrationsFolder, invoiceOptions } from './helpers/invoice-app.js'
import { InvoiceEntity } from './fixtures/invoice-app/invoice.entity.js'
import { mapLimit } from '../server/support/map-limit.js'

// An app with its own tenant schema, as a user of fastify-tenancy has one:
// an Invoice entity and its migrations in a folder (test/helpers/invoice-app.ts),
// given through the public options and the command line only.

const STRATEGIES = ['database', 'schema', 'shared'] as const
type Strategy = typeof STRATEGIES[number]
const SHARED_SCHEMA = 'tenant_shared'

/** The tables a tenant has: its database's, its schema's, or (strategy shared) the shared schema's. */
async function tablesOf (app: FastifyInstance, central: CentralDatabase, strategy: Strategy, tenant: Tenant): Promise<string[]> {
  const target = app.tenancy.tenants.target(tenant)
  const [url, schema] = strategy === 'database' ? [urlFor(target.name), 'public'] : [central.url, strategy === 'schema' ? target.name : SHARED_SCHEMA]
  return (await sql<{ t: string }>(url, 'select table_name as t from information_schema.tables where table_schema = $1 order by 1', [schema])).map((r) => r.t)
}

/** How many of the tenants have column `column` in their invoices table (strategy shared: all or none, one table). */
async function withColumn (app: FastifyInstance, central: CentralDatabase, strategy: Strategy, tenants: Tenant[], column: string): Promise<number> {
  const has = async (url: string, schema: string): Promise<boolean> =>
    (await sql(url, 'select 1 from information_schema.columns where table_schema = $1 and table_name = \'invoices\' and column_name = $2', [schema, column])).length === 1
  if (strategy === 'shared') return await has(central.url, SHARED_SCHEMA) ? tenants.length : 0
  const found = await mapLimit(tenants, 8, async (t) => {
    const target = app.tenancy.tenants.target(t)
    return strategy === 'database' ? await has(urlFor(target.name), 'public') : await has(central.url, target.name)
  })
  return found.filter(Boolean).length
}

/** A config file for the command: the central database, the invoice app's options (`entity`), and the strategy's. */
async function cliConfig (central: CentralDatabase, folder: string, extra: string, entity?: Parameters<typeof invoiceConfig>[1], more = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ft-invoices-'))
  const file = join(dir, 'tenancy.config.mjs')
  const app = invoiceConfig(folder, entity)
  await writeFile(file, `${app.imports}${more}export default { database: { url: ${JSON.stringify(central.url)}, prefix: ${JSON.stringify(central.prefix)} }, provisioning: { spares: 0 }, ${app.options}${extra} }\n`)
  return file
}

/** A fresh central database, and strategy shared's tables made from the invoice app's migrations; `shared` is the plugin's option. */
async function setUp (
  t: { after: (fn: () => Promise<void>) => void }, strategy: Strategy, folder: string
): Promise<{ central: CentralDatabase, shared: { url: string } | null, extra: string }> {
  const central = await freshCentral(null)
  t.after(central.drop)
  if (strategy !== 'shared') return { central, shared: null, extra: `, strategy: '${strategy}'` }
  const { url } = await prepareShared(central, SHARED_SCHEMA, { migrations: invoiceOptions(folder).tenantMigrations, sync: false })
  return { central, shared: { url }, extra: `, strategy: 'shared', shared: { url: ${JSON.stringify(url)} }` }
}

for (const strategy of STRATEGIES) {
  test(`[${strategy}] the app's own migrations make each tenant's invoices, tenants:migrate brings a new one to 200 tenants, status shows it, rollback undoes it, and a tenant made after has it`, async (t) => {
    const folder = await invoiceMigrationsFolder(2)
    const { central, shared, extra } = await setUp(t, strategy, folder)
    const { app } = await buildApp(t, {
      strategy,
      ...invoiceOptions(folder),
      ...(shared === null ? {} : { shared }),
      identification: ['header'],
      provisioning: { spares: 0 }
    }, (a) => {
      a.post('/invoices', async (request) => {
        const em = request.tenantEm
        em.create(InvoiceEntity, { number: 'INV-1', total: 42 } as never)
        await em.flush()
        return { invoices: await em.count(InvoiceEntity, {}) }
      })
    }, central)

    // A tenant holds the app's invoices, and nothing of a demo's.
    const acme = await app.tenancy.create({ identifier: 'acme' })
    const made = await app.inject({ method: 'POST', url: '/invoices', headers: { 'x-tenant': 'acme' } })
    assert.equal(made.statusCode, 200, made.body)
    assert.deepEqual(made.json(), { invoices: 1 })
    assert.deepEqual(await tablesOf(app, central, strategy, acme), ['fastify_tenancy_migrations', 'invoices'], 'the app\'s table and one migrations table: no projects, no users')
    assert.deepEqual(await app.tenancy.migrationStatus(acme), { executed: INVOICE_MIGRATIONS.slice(0, 2), pending: [] })

    const bulk = await makeTenants(app, 200, 'bulk')
    const tenants = [acme, ...bulk]
    assert.equal(await withColumn(app, central, strategy, tenants, 'customer'), 201)
    const template = async (): Promise<string | null> => (await sql<{ f: string | null }>(central.url, 'select shobj_description(oid, \'pg_database\') as f from pg_database where datname = $1', [`${central.prefix}template`]))[0]?.f ?? null
    const templateBefore = await template()

    // The app adds its third migration; the command brings it to every tenant.
    await addInvoiceMigration(folder, 2)
    const config = await cliConfig(central, folder, extra)
    const migrated = await run(['--config', config, 'tenants:migrate', '--concurrency', '8', '--json'])
    assert.equal(migrated.code, 0, migrated.stderr)
    const results = tenantLines(migrated.stdout)
    assert.equal(results.length, 201)
    assert.deepEqual(results.filter((r) => !r.ok || r.migrations.join() !== INVOICE_MIGRATIONS[2]), [], 'every tenant ran the third migration, and only it')
    assert.equal(await withColumn(app, central, strategy, tenants, 'notes'), 201)

    const status = await run(['--config', config, 'tenants:status', '--concurrency', '8', '--json'])
    assert.equal(status.code, 0, status.stderr)
    const rows = JSON.parse(status.stdout) as Array<{ identifier: string, executed: string[], pending: string[] }>
    assert.equal(rows.length, 201)
    assert.deepEqual(rows.filter((r) => r.executed.join() !== INVOICE_MIGRATIONS.join() || r.pending.length > 0), [])
    const table = await run(['--config', config, 'tenants:status', '--tenants', 'acme'])
    assert.match(table.stdout, new RegExp(`^acme\\s+3\\s+${INVOICE_MIGRATIONS[2]}\\s+none$`, 'm'))

    // A tenant made afterwards (by the running app) is at the newest migration; in strategy database its template was rebuilt.
    const late = await app.tenancy.create({ identifier: 'late' })
    assert.equal(await withColumn(app, central, strategy, [late], 'notes'), 1)
    assert.deepEqual((await app.tenancy.migrationStatus(late)).pending, [])
    if (strategy === 'database') {
      assert.notEqual(await template(), templateBefore, 'the template was rebuilt for the new list of migrations')
      assert.equal((await sql(urlFor(`${central.prefix}template`), 'select name from fastify_tenancy_migrations order by id')).length, 3)
    }

    // Rollback takes the newest app migration back, everywhere.
    const back = await run(['--config', config, 'tenants:rollback', '--concurrency', '8', '--json'])
    assert.equal(back.code, 0, back.stderr)
    const undone = tenantLines(back.stdout)
    assert.equal(undone.length, 202)
    assert.deepEqual(undone.filter((r) => !r.ok || r.migrations.join() !== INVOICE_MIGRATIONS[2]), [])
    assert.equal(await withColumn(app, central, strategy, [...tenants, late], 'notes'), 0)
    assert.equal(await withColumn(app, central, strategy, [...tenants, late], 'customer'), 202, 'the older migrations stay')
    assert.deepEqual((await app.tenancy.migrationStatus(acme)).pending, [INVOICE_MIGRATIONS[2]])
  })

  test(`[${strategy}] migration:check fails while the entities are ahead of the migrations; migration:create writes the migration, tenants:migrate applies it, and check passes`, async (t) => {
    const folder = await invoiceMigrationsFolder(2)
    const { central, shared, extra } = await setUp(t, strategy, folder)
    const options = { strategy, ...invoiceOptions(folder), ...(shared === null ? {} : { shared }), provisioning: { spares: 0 } }
    const { app } = await buildApp(t, options, () => {}, central)
    const tenants = await makeTenants(app, 2, 'shop')
    const before = await cliConfig(central, folder, extra)
    assert.equal((await run(['--config', before, 'migration:check'])).code, 0, 'the entity the migrations were written for agrees')

    // A release adds `paid` to invoices and a payments table; no migration says so yet.
    const fixture = new URL('./fixtures/invoice-app/invoice.entity.ts', import.meta.url).href
    const config = await cliConfig(central, folder, `${extra}, tenantEntities: [PaidInvoiceEntity, PaymentEntity]`, 'PaidInvoiceEntity', `import { PaymentEntity } from ${JSON.stringify(fixture)}\n`)
    const failing = await run(['--config', config, 'migration:check'])
    assert.equal(failing.code, 1, failing.stdout)
    assert.match(failing.stderr, /FST_TENANCY_MIGRATIONS_OUTDATED/)
    assert.match(failing.stderr, /"paid"/)
    assert.match(failing.stderr, /create table "payments"/)
    if (strategy === 'shared') {
      const rls = await run(['--config', config, 'tenants:rls', '--check'])
      assert.equal(rls.code, 1, 'a tenant entity\'s table that does not exist is not covered')
      assert.match(rls.stdout, /payments/)
    }

    const created = await run(['--config', config, 'migration:create', 'paid_and_payments'])
    assert.equal(created.code, 0, created.stderr)
    const files = (await readdir(folder)).sort()
    assert.equal(files.length, 3)
    assert.match(files[2] as string, /^Migration\d{14}_paid_and_payments\.ts$/)
    assert.match(created.stdout, new RegExp(`Wrote .*${files[2] as string}`))
    const source = await readFile(join(folder, files[2] as string), 'utf8')
    assert.match(source, /add column "paid" boolean not null default false/)
    if (strategy === 'shared') {
      // The new table is made a tenant table by the migration itself, and the new key holds per tenant.
      assert.match(source, /extends TenantMigration/)
      assert.match(source, /this\.tenantTable\('payments'\);/)
      assert.match(source, /this\.perTenant\(`alter table "invoices" add constraint "invoices_number_unique" unique \("number"\);`\);/)
      // The new table's foreign key to a table that has rows goes per tenant too.
      assert.match(source, /this\.perTenant\(`alter table "payments" add constraint "payments_invoice_id_foreign" foreign key \("invoice_id"\) references "invoices" \("id"\)[^`]*on delete set null;`\);/)
    } else {
      assert.match(source, /this\.addSql\(`alter table "invoices" add constraint "invoices_number_unique" unique \("number"\);`\);/)
    }
    // Both tenants have an invoice INV-1: unique per tenant, not across them.
    for (const tenant of tenants) {
      await app.tenancy.run(tenant, async (scope) => { scope.em.create(InvoiceEntity, { number: 'INV-1', total: 1 } as never); await scope.em.flush() })
    }

    // The migration written applies to the tenants, and then entities and migrations agree.
    const migrated = await run(['--config', config, 'tenants:migrate', '--json'])
    assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout)
    assert.deepEqual(tenantLines(migrated.stdout).map((r) => r.migrations), tenants.map(() => [(files[2] as string).replace(/\.ts$/, '')]))
    assert.equal(await withColumn(app, central, strategy, tenants, 'paid'), 2)
    if (strategy === 'shared') {
      const [key] = await sql(central.url, `select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'invoices_number_unique' and conrelid = '${SHARED_SCHEMA}.invoices'::regclass`)
      assert.equal(key?.def, 'UNIQUE (tenant_key, number)')
      const [fk] = await sql(central.url, `select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'payments_invoice_id_foreign' and conrelid = '${SHARED_SCHEMA}.payments'::regclass`)
      assert.match(String(fk?.def), /^FOREIGN KEY \(tenant_key, invoice_id\) REFERENCES tenant_shared\.invoices\(tenant_key, id\) ON UPDATE CASCADE ON DELETE SET NULL \(invoice_id\)$/)
      // A payment may point at its own tenant's invoice only; deleting that invoice empties the reference and keeps the row its tenant's.
      const [first, second] = tenants as [Tenant, Tenant]
      const invoiceOf = async (tenant: Tenant): Promise<number> => await app.tenancy.run(tenant, async (scope) => Number((await scope.em.getConnection().execute('select id from invoices where number = ?', ['INV-1']))[0]?.id))
      const foreign = await invoiceOf(second)
      const own = await invoiceOf(first)
      await assert.rejects(app.tenancy.run(first, async (scope) => await scope.em.getConnection().execute('insert into payments (invoice_id, amount) values (?, 1)', [foreign])), /payments_invoice_id_foreign/)
      await app.tenancy.run(first, async (scope) => {
        await scope.em.getConnection().execute('insert into payments (invoice_id, amount) values (?, 2)', [own])
        await scope.em.getConnection().execute('delete from invoices where id = ?', [own])
        assert.deepEqual(await scope.em.getConnection().execute('select invoice_id, amount from payments'), [{ invoice_id: null, amount: 2 }])
      })
    }
    const passing = await run(['--config', config, 'migration:check'])
    assert.equal(passing.code, 0, passing.stderr)
    assert.match(passing.stdout, /agree/)
    if (strategy === 'shared') assert.equal((await run(['--config', config, 'tenants:rls', '--check'])).code, 0, 'payments has its policy')
    // Nothing left to write.
    const again = await run(['--config', config, 'migration:create'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /nothing to migrate/)
    assert.equal((await readdir(folder)).length, 3)
  })
}
