import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { tenancyPlugin, type Tenant } from '../../server/index.js'
import { createAppRole } from '../../server/database/shared/rls-policies.js'
import { migrateShared } from '../../server/database/shared/shared-schema.js'
import { tenantTableSql } from '../../server/database/shared/rls-sql.js'
import { mapLimit } from '../../server/support/map-limit.js'
import { freshCentral, sql } from './database.js'
import { asRole } from './shared.js'
import { startPgBouncer } from './pgbouncer.js'
import { seededRandom, testSeed } from './random.js'
import { ProjectEntity, TEST_TENANT_SCHEMA, tenantMigrations } from './tenant-schema.js'
import { TenantMigrator } from '../../server/database/tenant-migrator.js'
import { appMigrationSet, librarySet } from '../../server/database/migration-sets.js'

/**
 * Strategy `shared` under attack from inside: many tenants' requests
 * interleaved on one pool behind PgBouncer in transaction mode, while one
 * tenant's route runs hostile SQL from a list. Every row a tenant can read
 * carries its owner's identifier (`<owner>:...` titles, an `owner` column),
 * so a request that sees a row of another tenant is counted, and after the
 * run every tenant's rows are checked through the central role. Shared by
 * `npm run soak` (100,000 requests) and the test suite (10,000).
 */

/** What the hostile tenant's route tries, one item per request. */
export const HOSTILE_ITEMS = [
  'temp-shadow', 'hold-cursor', 'session-setting', 'role-default', 'set-role', 'stat-replay', 'cancel', 'explicit-id', 'foreign-fk', 'unique-probe'
] as const
export type HostileItem = typeof HOSTILE_ITEMS[number]

export interface MixOptions {
  /** A PostgreSQL server URL as a superuser (the central role). */
  serverUrl: string
  requests: number
  /** Tenants in all, the hostile one included. */
  tenants?: number
  /** Share of the requests that go to the hostile route. */
  hostileShare?: number
  inFlight?: number
  seed?: number
  items?: readonly HostileItem[]
  log?: (line: string) => void
}

export interface ItemCounts {
  tries: number
  /** Times PostgreSQL let the item's statement through (it may still do no harm). */
  through: number
  /** Rows of other tenants the item read. */
  foreignRows: number
  /** Facts about other tenants it learned (an id or an email another tenant has, a tenant value or statement text). */
  revealed: number
}

export interface MixCounts {
  requests: number
  seconds: number
  byRoute: Record<string, number>
  /** Rows a request of another tenant than the hostile one got that belong to someone else. */
  foreignRowsSeen: number
  /** The same, and the 5xx to other tenants, by route. */
  foreignByRoute: Record<string, number>
  otherTenants5xxByRoute: Record<string, number>
  /** Rows found (through the central role) in one tenant's rows that another tenant wrote. */
  wrongTenantWrites: number
  /** Writes answered 200 that are not in their tenant's rows. */
  lostWrites: number
  /** Rows pointing at a row of another tenant (checked through the central role). */
  crossTenantReferences: number
  /** 5xx answered to the other tenants' requests: must be 0. */
  otherTenants5xx: number
  otherTenants5xxSamples: string[]
  /** The hostile route's own failures (expected: its SQL is hostile). */
  hostile5xx: number
  /** A tenant the hostile route pointed at was deleted: finished (true) or stuck. */
  victimDeleted: boolean
  hostile: Record<HostileItem, ItemCounts>
}

const literal = (v: string): string => `'${v.replaceAll("'", "''")}'`
const owner = (row: Record<string, unknown>): string => String(row.owner ?? String(row.title ?? '').split(':')[0])
type Em = FastifyRequest['tenantEm']

/** Runs one statement in the hostile tenant; its error, if any, instead of rows. */
async function attempt (em: Em, text: string): Promise<{ rows: Array<Record<string, unknown>>, error: (Error & { code?: string }) | null }> {
  try {
    return { rows: await em.execute(text), error: null }
  } catch (error) {
    return { rows: [], error: error as Error & { code?: string } }
  }
}

/** The proofs a tenant statement carries today: `<uuid>.<64 hex>` values of the tenant setting. */
const PROOF = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-f]{64}/g

interface HostileReport { through: boolean, foreignRows: number, revealed: number }

/**
 * One hostile item, run as the hostile tenant through its tenant
 * EntityManager (raw SQL, as an injection in one route would).
 */
async function hostile (item: HostileItem, em: Em, me: string, rng: () => number, world: { maxProjectId: number, others: string[] }): Promise<HostileReport> {
  const foreign = (rows: Array<Record<string, unknown>>): number => rows.filter((r) => owner(r) !== me).length
  switch (item) {
    case 'temp-shadow': {
      // A temporary table named like a shared table shadows it for unqualified SQL of the next tenant on this connection.
      const made = await attempt(em, 'create temp table if not exists projects (id int, title text, tenant_key uuid, created_at timestamptz)')
      await attempt(em, `insert into projects (title) values (${literal(`${me}:temp`)})`)
      await attempt(em, 'create temp table if not exists contacts (id int, owner text, email text, tenant_key uuid)')
      const seen = await attempt(em, 'select title from projects')
      return { through: made.error === null, foreignRows: foreign(seen.rows), revealed: 0 }
    }
    case 'hold-cursor': {
      // A cursor that outlives its transaction, named like the one the export route declares; and any cursor left on this connection.
      const held = await attempt(em, 'declare export_cursor cursor with hold for select title from projects')
      let rows = 0
      const names = await attempt(em, "select name from pg_cursors where name <> 'export_cursor'")
      for (const n of names.rows) rows += foreign((await attempt(em, `fetch all from "${String(n.name).replaceAll('"', '""')}"`)).rows)
      return { through: held.error === null, foreignRows: rows, revealed: 0 }
    }
    case 'session-setting': {
      // The tenant setting and search_path for the whole session, not the transaction: whatever the pooler hands this connection to next.
      const set = await attempt(em, "select set_config('fastify_tenancy.tenant', current_setting('fastify_tenancy.tenant', true), false), set_config('search_path', 'pg_temp, ' || current_setting('search_path'), false)")
      return { through: set.error === null, foreignRows: 0, revealed: 0 }
    }
    case 'role-default': {
      // Any role may set its own session defaults (PostgreSQL keeps custom settings such as the tenant one out):
      // every connection opened after this starts with temporary objects first on its search_path.
      const tenantDefault = await attempt(em, "do $$ begin execute format('alter role %I set fastify_tenancy.tenant = %L', current_user, current_setting('fastify_tenancy.tenant', true)); end $$")
      const pathDefault = await attempt(em, "do $$ begin execute format('alter role %I set search_path = pg_temp, tenant_shared', current_user); end $$")
      return { through: tenantDefault.error === null || pathDefault.error === null, foreignRows: 0, revealed: 0 }
    }
    case 'set-role': {
      let through = false
      let rows = 0
      const roles = await attempt(em, 'select rolname from pg_roles where rolname <> current_user')
      for (const r of roles.rows) {
        const became = await attempt(em, `set role "${String(r.rolname).replaceAll('"', '""')}"`)
        if (became.error !== null) continue
        through = true
        rows += foreign((await attempt(em, 'select title from projects')).rows)
        // Left set on purpose: the next tenant on this connection would run as that role.
      }
      await attempt(em, 'set session authorization default')
      return { through, foreignRows: rows, revealed: 0 }
    }
    case 'stat-replay': {
      // Other sessions of the shared role: their statement text, and any tenant value in it, replayed.
      const seen = await attempt(em, 'select query from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()')
      const own = String((await attempt(em, "select current_setting('fastify_tenancy.tenant', true) as v")).rows[0]?.v ?? '')
      const text = seen.rows.map((r) => String(r.query ?? '')).join('\n')
      const values = [...new Set(text.match(PROOF) ?? [])].filter((v) => v !== own)
      let revealed = values.length + world.others.filter((o) => text.includes(`'${o}:`)).length
      let rows = 0
      for (const v of values.slice(0, 3)) {
        const read = await attempt(em, `do $$ declare r text; begin perform set_config('fastify_tenancy.tenant', ${literal(v)}, true); select string_agg(title, '|') into r from projects; raise exception 'LEAK:%', coalesce(r, ''); end $$`)
        const leaked = /LEAK:(.*)$/s.exec(read.error?.message ?? '')?.[1] ?? ''
        rows += leaked === '' ? 0 : leaked.split('|').filter((t) => !t.startsWith(`${me}:`)).length
        await attempt(em, `do $$ begin perform set_config('fastify_tenancy.tenant', ${literal(v)}, true); insert into projects (title) values (${literal(`${me}:replayed`)}); end $$`)
      }
      if (rows > 0) revealed += rows
      return { through: values.length > 0, foreignRows: rows, revealed }
    }
    case 'cancel': {
      const others = await attempt(em, 'select pid from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()')
      let through = false
      for (const [i, r] of others.rows.entries()) {
        const fn = i === 0 && rng() < 0.2 ? 'pg_terminate_backend' : 'pg_cancel_backend'
        const sent = await attempt(em, `select ${fn}(${Number(r.pid)}) as ok`)
        if (sent.rows[0]?.ok === true) through = true
      }
      return { through, foreignRows: 0, revealed: 0 }
    }
    case 'explicit-id': {
      // 23505 on an id this tenant does not have: another tenant has it.
      const id = 1 + Math.floor(rng() * (world.maxProjectId + 50))
      const put = await attempt(em, `insert into projects (id, title) values (${id}, ${literal(`${me}:probe`)})`)
      if (put.error?.code !== '23505' && !/duplicate key/.test(put.error?.message ?? '')) return { through: false, foreignRows: 0, revealed: 0 }
      const mine = await attempt(em, `select 1 from projects where id = ${id}`)
      const revealed = mine.rows.length === 0 ? 1 : 0
      return { through: revealed > 0, foreignRows: 0, revealed }
    }
    case 'foreign-fk': {
      // A task of this tenant pointing at a project id it does not have: accepted only if the key looks across tenants.
      const id = 1 + Math.floor(rng() * world.maxProjectId)
      const mine = await attempt(em, `select 1 from projects where id = ${id}`)
      if (mine.rows.length > 0) return { through: false, foreignRows: 0, revealed: 0 }
      const put = await attempt(em, `insert into tasks (project_id, title) values (${id}, ${literal(`${me}:fk`)})`)
      return { through: put.error === null, foreignRows: 0, revealed: put.error === null ? 1 : 0 }
    }
    case 'unique-probe': {
      const victim = world.others[Math.floor(rng() * world.others.length)] as string
      const put = await attempt(em, `insert into contacts (owner, email) values (${literal(me)}, ${literal(`${victim}@soak.test`)})`)
      const refused = put.error?.code === '23505' || /duplicate key/.test(put.error?.message ?? '')
      if (!refused) await attempt(em, `delete from contacts where email = ${literal(`${victim}@soak.test`)}`)
      return { through: refused, foreignRows: 0, revealed: refused ? 1 : 0 }
    }
  }
}

const ROUTES = [['orm', 25], ['raw', 20], ['write', 15], ['knex', 10], ['export', 10], ['slow', 5], ['contacts', 10], ['tasks', 5]] as const

/**
 * Runs the mix and returns its counts. Makes its own central database, app
 * role, PgBouncer and app, and removes them after.
 */
export async function runHostileMix (options: MixOptions): Promise<MixCounts> {
  const log = options.log ?? (() => {})
  const tenantCount = options.tenants ?? 200
  // Seeded: the same mix every run (TEST_SEED, or options.seed, picks another).
  const rng = seededRandom(options.seed ?? testSeed(24))
  const items = options.items ?? HOSTILE_ITEMS
  const central = await freshCentral(null, options.serverUrl)
  const role = `ft_soak_${randomBytes(4).toString('hex')}`
  const password = randomBytes(12).toString('hex')
  let bouncer: Awaited<ReturnType<typeof startPgBouncer>> | null = null
  let app: FastifyInstance | null = null
  try {
    await createAppRole(central.url, role, password)
    const centralRole = decodeURIComponent(new URL(central.url).username)
    const migrator = new TenantMigrator([librarySet, appMigrationSet(tenantMigrations)])
    await migrateShared({ centralUrl: central.url, schema: 'tenant_shared', centralRole, appRole: role }, migrator).finally(async () => { await migrator.close() })
    // The app's own tables, made the way a migration in strategy shared makes them.
    const tables = [
      'create table tenant_shared.contacts (id serial primary key, owner text not null, email text not null)',
      'create unique index contacts_email on tenant_shared.contacts (email)',
      'create table tenant_shared.tasks (id serial primary key, project_id int, title text not null)',
      ...tenantTableSql('tenant_shared', 'contacts', centralRole),
      ...tenantTableSql('tenant_shared', 'tasks', centralRole),
      'alter table tenant_shared.tasks add foreign key (tenant_key, project_id) references tenant_shared.projects (tenant_key, id)',
      `grant select, insert, update, delete on all tables in schema tenant_shared to "${role}"`,
      `grant usage, select on all sequences in schema tenant_shared to "${role}"`
    ]
    await sql(central.url, `begin; ${tables.join(';\n')}; commit`)
    const appUrl = asRole(central.url, role, password)
    bouncer = await startPgBouncer(appUrl, { mode: 'transaction', poolSize: 8 })
    const bounced = bouncer.url(appUrl)

    const acknowledged = new Map<string, string[]>()
    const counts: MixCounts = {
      requests: 0,
      seconds: 0,
      byRoute: {},
      foreignRowsSeen: 0,
      foreignByRoute: {},
      otherTenants5xxByRoute: {},
      wrongTenantWrites: 0,
      lostWrites: 0,
      crossTenantReferences: 0,
      otherTenants5xx: 0,
      otherTenants5xxSamples: [],
      hostile5xx: 0,
      victimDeleted: false,
      hostile: Object.fromEntries(HOSTILE_ITEMS.map((i) => [i, { tries: 0, through: 0, foreignRows: 0, revealed: 0 }])) as Record<HostileItem, ItemCounts>
    }
    const world = { maxProjectId: 0, others: [] as string[] }

    app = Fastify({ logger: false })
    await app.register(tenancyPlugin, {
      ...TEST_TENANT_SCHEMA,
      database: { url: central.url, prefix: central.prefix },
      identification: ['header'],
      cache: { listen: false },
      strategy: 'shared',
      shared: { url: bounced, poolSize: 12 }
    })
    const me = (request: { tenant: Tenant | null }): string => (request.tenant as Tenant).identifier
    app.get('/orm', async (request) => (await request.tenantEm.find(ProjectEntity, {})).map((p) => ({ title: p.title })))
    app.get('/raw', async (request) => await request.tenantEm.execute('select title from projects'))
    // A route that breaks the rule of docs/strategies.md (no em.getKnex()): no tenant in its statement, so it must see nothing of anyone else.
    app.get('/knex', async (request) => {
      const res = await request.tenantEm.getKnex().raw('select title from tenant_shared.projects')
      return (res as { rows: unknown[] }).rows
    })
    app.post('/write', async (request) => {
      const title = `${me(request)}:w${(request.body as { n: number }).n}`
      if ((request.body as { n: number }).n % 2 === 0) {
        request.tenantEm.create(ProjectEntity, { title })
        await request.tenantEm.flush()
      } else {
        await request.tenantEm.execute('insert into projects (title) values (?)', [title])
      }
      return { title }
    })
    app.get('/export', async (request) => await request.tenantEm.transactional(async (em) => {
      await em.execute('declare export_cursor cursor for select title from projects')
      const rows = await em.execute('fetch all from export_cursor')
      await em.execute('close export_cursor')
      return rows
    }))
    app.get('/slow', async (request) => await request.tenantEm.execute('select title, pg_sleep(0.002) from projects'))
    app.get('/contacts', async (request) => await request.tenantEm.execute('select owner, email from contacts'))
    app.get('/tasks', async (request) => await request.tenantEm.execute('select title from tasks'))
    app.get('/hostile', async (request) => {
      const item = (request.query as { item: HostileItem }).item
      return await hostile(item, request.tenantEm, me(request), rng, world)
    })
    await app.ready()

    log(`mix: ${tenantCount} tenants, ${options.requests} requests, PgBouncer (transaction mode, 8 server connections for 12 client ones) on port ${bouncer.port}`)
    const setupStarted = Date.now()
    const tenants = await mapLimit(Array.from({ length: tenantCount - 1 }, (_, i) => i), 16, async (i) => await (app as FastifyInstance).tenancy.create({ identifier: `t${i}` }))
    const bad = await app.tenancy.create({ identifier: 'hostile' })
    world.others = tenants.map((t) => t.identifier)
    // Each tenant's rows, written by the central role (which crosses tenants) in one statement per table, each row carrying its owner.
    const all = [...tenants, bad]
    const keys = all.map((t) => t.key)
    const names = all.map((t) => t.identifier)
    await sql(central.url, `insert into tenant_shared.projects (tenant_key, title)
      select k, n || s from unnest($1::uuid[], $2::text[]) u(k, n), (values (':a'), (':b')) v(s)`, [keys, names])
    await sql(central.url, "insert into tenant_shared.contacts (tenant_key, owner, email) select k, n, n || '@soak.test' from unnest($1::uuid[], $2::text[]) u(k, n)", [keys, names])
    await sql(central.url, `insert into tenant_shared.tasks (tenant_key, project_id, title)
      select p.tenant_key, p.id, split_part(p.title, ':', 1) || ':task' from tenant_shared.projects p where p.title like '%:a'`)
    log(`mix: ${all.length} tenants made and seeded in ${Math.round((Date.now() - setupStarted) / 100) / 10} s`)
    world.maxProjectId = Number((await sql(central.url, 'select max(id) as m from tenant_shared.projects'))[0]?.m ?? 0)

    const started = Date.now()
    const weights = ROUTES.reduce((s, [, w]) => s + w, 0)
    let next = 0
    let writes = 0
    let hostileTurn = 0
    const worker = async (): Promise<void> => {
      while (next < options.requests) {
        next++
        if (rng() < (options.hostileShare ?? 0.05)) {
          const item = items[hostileTurn++ % items.length] as HostileItem
          counts.byRoute.hostile = (counts.byRoute.hostile ?? 0) + 1
          const res = await (app as FastifyInstance).inject({ url: `/hostile?item=${item}`, headers: { 'x-tenant': 'hostile' } })
          const c = counts.hostile[item]
          c.tries++
          if (res.statusCode >= 500) { counts.hostile5xx++; continue }
          const r = res.json() as HostileReport
          if (r.through) c.through++
          c.foreignRows += r.foreignRows
          c.revealed += r.revealed
          continue
        }
        const tenant = tenants[Math.floor(rng() * tenants.length)] as Tenant
        let pick = rng() * weights
        const route = (ROUTES.find(([, w]) => (pick -= w) < 0) ?? ROUTES[0])[0]
        counts.byRoute[route] = (counts.byRoute[route] ?? 0) + 1
        const n = writes++
        const res = route === 'write'
          ? await (app as FastifyInstance).inject({ method: 'POST', url: '/write', headers: { 'x-tenant': tenant.identifier }, payload: { n } })
          : await (app as FastifyInstance).inject({ url: `/${route}`, headers: { 'x-tenant': tenant.identifier } })
        if (res.statusCode !== 200) {
          if (res.statusCode >= 500) {
            counts.otherTenants5xx++
            counts.otherTenants5xxByRoute[route] = (counts.otherTenants5xxByRoute[route] ?? 0) + 1
          }
          if (counts.otherTenants5xxSamples.length < 5) counts.otherTenants5xxSamples.push(`${res.statusCode} /${route}: ${res.body.slice(0, 300)}`)
          continue
        }
        if (route === 'write') {
          const list = acknowledged.get(tenant.key) ?? []
          list.push((res.json() as { title: string }).title)
          acknowledged.set(tenant.key, list)
          continue
        }
        for (const row of res.json() as Array<Record<string, unknown>>) {
          if (owner(row) === tenant.identifier) continue
          counts.foreignRowsSeen++
          counts.foreignByRoute[route] = (counts.foreignByRoute[route] ?? 0) + 1
        }
      }
    }
    await Promise.all(Array.from({ length: options.inFlight ?? 64 }, worker))
    counts.requests = options.requests
    counts.seconds = Math.round((Date.now() - started) / 100) / 10

    // Every tenant's rows, through the central role: each carries its owner, and every acknowledged write is there.
    const byKey = new Map([...tenants, bad].map((t) => [t.key, t.identifier]))
    for (const table of ['projects', 'contacts', 'tasks']) {
      const rows = await sql(central.url, `select tenant_key, ${table === 'contacts' ? 'owner' : 'title'} from tenant_shared.${table}`)
      counts.wrongTenantWrites += rows.filter((r) => byKey.get(r.tenant_key) !== owner(r)).length
    }
    for (const [key, titles] of acknowledged) {
      const rows = await sql(central.url, 'select title from tenant_shared.projects where tenant_key = $1 and title = any ($2)', [key, titles])
      counts.lostWrites += titles.length - rows.length
    }
    counts.crossTenantReferences = Number((await sql(central.url, `select count(*)::int as n from tenant_shared.tasks t where t.project_id is not null
      and not exists (select 1 from tenant_shared.projects p where p.tenant_key = t.tenant_key and p.id = t.project_id)`))[0]?.n ?? 0)
    // A tenant the hostile route aimed at is deleted: it must finish, whatever points at it.
    const victim = tenants[0] as Tenant
    try {
      await app.tenancy.delete(victim)
      counts.victimDeleted = (await app.tenancy.tenants.find(victim.identifier)) === null
    } catch (error) {
      log(`mix: deleting ${victim.identifier} failed: ${(error as Error).message}`)
    }
    return counts
  } finally {
    await app?.close()
    await bouncer?.stop()
    await central.drop()
    await sql(options.serverUrl, `drop role if exists "${role}"`).catch(() => {})
  }
}

/** The counts that must be 0 (or true) for the shared strategy to hold. */
export function mixFailures (c: MixCounts): string[] {
  const failures: string[] = []
  if (c.foreignRowsSeen > 0) failures.push(`${c.foreignRowsSeen} foreign rows seen by other tenants`)
  if (c.wrongTenantWrites > 0) failures.push(`${c.wrongTenantWrites} writes in a wrong tenant`)
  if (c.lostWrites > 0) failures.push(`${c.lostWrites} acknowledged writes lost`)
  if (c.crossTenantReferences > 0) failures.push(`${c.crossTenantReferences} rows pointing at another tenant's rows`)
  if (c.otherTenants5xx > 0) failures.push(`${c.otherTenants5xx} 5xx to other tenants (${c.otherTenants5xxSamples.join(' | ')})`)
  if (!c.victimDeleted) failures.push('a tenant the hostile route pointed at could not be deleted')
  for (const [item, h] of Object.entries(c.hostile)) {
    if (h.foreignRows > 0) failures.push(`${item}: the hostile tenant read ${h.foreignRows} rows of other tenants`)
    if (h.revealed > 0) failures.push(`${item}: the hostile tenant learned ${h.revealed} facts about other tenants`)
  }
  return failures
}

/** The counts as lines for a terminal. */
export function printMix (c: MixCounts): string {
  const lines = [
    `requests ${c.requests} in ${c.seconds} s (${Object.entries(c.byRoute).map(([r, n]) => `${r} ${n}`).join(', ')})`,
    `foreign rows seen by other tenants   ${c.foreignRowsSeen}${c.foreignRowsSeen > 0 ? ` (${Object.entries(c.foreignByRoute).map(([r, n]) => `${r} ${n}`).join(', ')})` : ''}`,
    `writes landed in a wrong tenant      ${c.wrongTenantWrites}`,
    `acknowledged writes lost             ${c.lostWrites}`,
    `rows pointing at another tenant      ${c.crossTenantReferences}`,
    `5xx to other tenants                 ${c.otherTenants5xx}${c.otherTenants5xx > 0 ? ` (${Object.entries(c.otherTenants5xxByRoute).map(([r, n]) => `${r} ${n}`).join(', ')})` : ''}`,
    `5xx of the hostile route (expected)  ${c.hostile5xx}`,
    `victim tenant deleted                ${c.victimDeleted ? 'yes' : 'NO (stuck)'}`,
    'hostile item          tries  through  foreign-rows  revealed'
  ]
  for (const [item, h] of Object.entries(c.hostile)) lines.push(`${item.padEnd(20)} ${String(h.tries).padStart(6)} ${String(h.through).padStart(8)} ${String(h.foreignRows).padStart(13)} ${String(h.revealed).padStart(9)}`)
  for (const s of c.otherTenants5xxSamples) lines.push(`  sample: ${s}`)
  return lines.join('\n')
}
