import { mkdir, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, relative, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { EntitySchema } from '@mikro-orm/core'
import { ROOT } from './cli.js'
import { InvoiceEntity } from '../fixtures/invoice-app/invoice.entity.js'

// A small app of its own for the tests of the app's tenant schema: an
// `Invoice` entity (test/fixtures/invoice-app) and its tenant migrations in a
// folder, as `mikro-orm migration:create` and `fastify-tenancy
// migration:create` write them. The folder is made per test under .tmp/ (in
// the project, so the migrations resolve their imports), and a test adds the
// third migration to it while its tenants run.

/** The migrations of the invoice app, in order: file name and body (up, down). */
const MIGRATIONS = [
  {
    name: 'Migration20260101000001_invoices',
    up: ['create table "invoices" ("id" serial primary key, "number" varchar(32) not null, "total" int not null default 0);'],
    // Strategy shared: the table gets its tenant key and policy (a no-op in the other strategies).
    tenantTable: 'invoices',
    down: ['drop table if exists "invoices" cascade;']
  },
  {
    name: 'Migration20260101000002_invoice_customer',
    up: ['alter table "invoices" add column "customer" varchar(255) null;'],
    down: ['alter table "invoices" drop column "customer";']
  },
  {
    name: 'Migration20260101000003_invoice_notes',
    up: ['alter table "invoices" add column "notes" text null;'],
    down: ['alter table "invoices" drop column "notes";']
  }
] as const

export const INVOICE_MIGRATIONS = MIGRATIONS.map((m) => m.name)

/** A new folder for the invoice app's migrations, holding the first `count` of them. */
export async function invoiceMigrationsFolder (count: number): Promise<string> {
  const folder = join(ROOT, '.tmp', `invoice-app-${randomBytes(4).toString('hex')}`, 'migrations')
  await mkdir(folder, { recursive: true })
  for (let i = 0; i < count; i++) await addInvoiceMigration(folder, i)
  return folder
}

/** Writes the invoice app's migration number `index` (0-based) into `folder`. */
export async function addInvoiceMigration (folder: string, index: number): Promise<string> {
  const m = MIGRATIONS[index]
  if (m === undefined) throw new Error(`the invoice app has no migration ${index}`)
  const library = relative(folder, join(ROOT, 'server', 'index.js')).split(sep).join('/')
  const lines = [
    `import { TenantMigration } from '${library}'`,
    '',
    `export class ${m.name.replace('_', '').replace(/_/g, '')} extends TenantMigration {`,
    '  override async up (): Promise<void> {',
    ...m.up.map((sql) => `    this.addSql(${JSON.stringify(sql)})`),
    ...('tenantTable' in m ? [`    this.tenantTable('${m.tenantTable}')`] : []),
    '  }',
    '',
    '  override async down (): Promise<void> {',
    ...m.down.map((sql) => `    this.addSql(${JSON.stringify(sql)})`),
    '  }',
    '}',
    ''
  ]
  const file = join(folder, `${m.name}.ts`)
  await writeFile(file, lines.join('\n'))
  return file
}

/** The invoice app's tenant options: its entity and its migrations folder. */
export function invoiceOptions (
  folder: string, entity: EntitySchema<any, any> = InvoiceEntity
): { tenantEntities: Array<EntitySchema<any, any>>, tenantMigrations: { path: string, pathTs: string } } {
  return { tenantEntities: [entity], tenantMigrations: { path: folder, pathTs: folder } }
}

/** The config-file lines that import the invoice entity and give the invoice app's options (for the CLI). */
export function invoiceConfig (folder: string, entity: 'InvoiceEntity' | 'PaidInvoiceEntity' = 'InvoiceEntity'): { imports: string, options: string } {
  const module = pathToFileURL(join(ROOT, 'test', 'fixtures', 'invoice-app', 'invoice.entity.ts')).href
  return {
    imports: `import { ${entity} } from ${JSON.stringify(module)}\n`,
    options: `tenantEntities: [${entity}], tenantMigrations: { path: ${JSON.stringify(folder)}, pathTs: ${JSON.stringify(folder)} }`
  }
}
