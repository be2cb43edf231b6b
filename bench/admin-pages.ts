import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { tenancyPlugin, CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'
import { adminPlugin } from '../server/admin/index.js'
import { hashPassword } from '../server/admin/auth/password.js'
import { benchCentral } from './central.js'
import { round, type BenchContext, type Figure } from './figures.js'

const TENANTS = 10_000
const USERS = 10_000
/** Tenants with a real database (their pages read it); the rest are central rows only, as the list pages see them. */
const REAL = 8
const ROUNDS = 10
const COOKIE_SECRET = 'bench-cookie-secret-that-is-long-enough-0123456789'

async function sql (url: string, text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try { return (await client.query(text, params)).rows } finally { await client.end() }
}

/** 10,000 tenants (a few with databases), 10,000 users in 1 to 3 tenants each, a cluster of 500, and an audit log of 20,000 entries. */
export async function seed (
  app: FastifyInstance, url: string, log: (line: string) => void
): Promise<{ real: string[], cluster: string, user: string, admin: string }> {
  const real: string[] = []
  for (let i = 0; i < REAL; i++) real.push((await app.tenancy.create({ identifier: `real-${i}`, name: `Real tenant ${i}`, domains: [`real-${i}.example.test`] })).key)
  log(`admin.pages: ${REAL} tenants with databases made`)
  const keys = Array.from({ length: TENANTS - REAL }, () => uuidv7())
  await sql(url, `insert into tenancy.tenants (key, identifier, name, status, created_at)
    select k, 'tenant-' || lpad(i::text, 5, '0'), 'Tenant number ' || i, case when i % 50 = 0 then 'suspended' else 'active' end, now() - make_interval(mins => i::int)
      from unnest($1::uuid[]) with ordinality as t(k, i)`, [keys])
  await sql(url, "insert into tenancy.domains (domain, tenant_key, is_primary) select identifier || '.example.org', key, true from tenancy.tenants where identifier like 'tenant-%' and right(identifier, 1) = '7'")
  const known = (await sql(url, 'select executed from tenancy.tenant_migration_states where tenant_key = $1', [real[0]]))[0]?.executed ?? []
  await sql(url, 'insert into tenancy.tenant_migration_states (tenant_key, executed) select key, $1::text[] from tenancy.tenants on conflict do nothing', [known])
  const cluster = uuidv7()
  // A cluster of 500 tenants (its Parent Tenant set in the same statement, as the database's rule wants), and nine small ones.
  await sql(url, `with c as (insert into tenancy.tenant_clusters (id, name, slug, parent_tenant_id) values ($1, 'Big Region', 'big-region', (select key from tenancy.tenants where identifier = 'tenant-01000')) returning id)
    update tenancy.tenants set tenant_cluster_id = $1 where identifier between 'tenant-01000' and 'tenant-01499'`, [cluster])
  for (let i = 0; i < 9; i++) await app.tenancy.clusters.create({ name: `Region ${i}` })
  await sql(url, `insert into tenancy.users (global_id, name, email, password)
    select 'user-' || i, 'User ' || lpad(i::text, 5, '0'), 'user' || i || '@example.test', 'x' from generate_series(1, $1::int) i`, [USERS])
  // Tenants numbered once, so each user's one to three tenants are picked by arithmetic, not a sort per row.
  await sql(url, `with n as (select count(*)::int as c from tenancy.tenants)
    insert into tenancy.tenant_users (tenant_key, global_user_id)
    select t.key, 'user-' || u from generate_series(1, $1::int) u cross join generate_series(1, 3) k cross join n
      join (select key, (row_number() over (order by key))::int - 1 as rn from tenancy.tenants) t on t.rn = (u * 7919 + k * 104729) % n.c
     where k <= 1 + u % 3
    on conflict do nothing`, [USERS])
  // The real tenants have 300 users each (pivot rows; their databases hold none of the copies: the page reads them all the same).
  await sql(url, "insert into tenancy.tenant_users (tenant_key, global_user_id) select k, 'user-' || u from unnest($1::uuid[]) k, generate_series(1, 300) u on conflict do nothing", [real])
  const adminId = uuidv7()
  await sql(url, "insert into tenancy.admins (id, email, name, password_hash) values ($1, 'bench@example.test', 'Bench', $2)", [adminId, await hashPassword('bench admin password')])
  await sql(url, "insert into tenancy.admin_role_assignments (admin_id, role_id) select $1, id from tenancy.admin_roles where name = 'owner'", [adminId])
  await sql(url, `insert into tenancy.admin_audit_log (actor_id, actor_email, action, tenant_key, tenant_identifier, cluster_id, cluster_name, change, at)
    select $1, 'bench@example.test', (array['tenant.update', 'tenant.suspend', 'cluster.attach', 'user.attach'])[1 + i % 4], t.key, t.identifier,
           case when i % 4 = 2 then $2::uuid end, case when i % 4 = 2 then 'Big Region' end,
           jsonb_build_object('name', jsonb_build_object('from', 'Old ' || i, 'to', 'New ' || i)), now() - make_interval(secs => i)
      from generate_series(1, 20000) i join (select key, identifier, (row_number() over (order by key))::int - 1 as rn from tenancy.tenants) t on t.rn = i % 500`, [adminId, cluster])
  await sql(url, 'vacuum analyze')
  return { real, cluster, user: 'user-42', admin: adminId }
}

/**
 * Server time of every admin page (and the JSON the pages fetch) with 10,000
 * tenants and 10,000 users: each page is opened ROUNDS times after a warm-up
 * round, timed by Fastify from the request's arrival to its response
 * (`reply.elapsedTime`), and the 95th percentile of all of them is printed.
 */
export async function adminPages (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const app = Fastify({ logger: false })
  const times = new Map<string, number[]>()
  let current = ''
  try {
    await app.register(tenancyPlugin, {
      ...TEST_TENANT_SCHEMA,
      database: { url: central.url, prefix: central.prefix },
      identification: ['subdomain', 'domain'],
      cache: { listen: false },
      provisioning: { spares: 0 },
      sync: { mode: 'inline', resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
    })
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
    app.addHook('onResponse', async (request, reply) => {
      if (current !== '' && request.headers['x-bench-page'] === current) times.get(current)?.push(reply.elapsedTime)
    })
    await app.ready()
    const ids = await seed(app, central.url, ctx.log)
    ctx.log('admin.pages: seeded 10,000 tenants, 10,000 users, 20,000 audit entries')
    const login = await app.inject({ url: '/admin/login', headers: { host: 'localhost' } })
    const csrfCookie = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
    const token = /name="_csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? ''
    const signed = await app.inject({ method: 'POST', url: '/admin/login', payload: new URLSearchParams({ _csrf: token, email: 'bench@example.test', password: 'bench admin password' }).toString(), headers: { host: 'localhost', cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' } })
    if (signed.statusCode !== 303) throw new Error(`the bench admin could not sign in (${signed.statusCode})`)
    const cookie = [...login.cookies, ...signed.cookies].map((c) => `${c.name}=${c.value}`).join('; ')
    const [realKey, otherReal] = ids.real as [string, string]
    const member = (await sql(central.url, "select key from tenancy.tenants where identifier = 'tenant-01200'"))[0]?.key as string
    const domainId = (await sql(central.url, 'select id from tenancy.domains where tenant_key = $1', [realKey]))[0]?.id as number
    // A rollout over every tenant (all up to date, so recorded and skipped): the Fleet page and its own page list 10,000 rows.
    const rollout = await app.tenancy.rollouts.start({ startedBy: 'bench@example.test' })
    const pages = [
      '/admin', '/admin/account',
      '/admin/tenants', '/admin/tenants?q=tenant-0999', '/admin/tenants?page=200', '/admin/tenants?status=suspended&sort=name&dir=desc', `/admin/tenants?cluster=${ids.cluster}`, '/admin/tenants?q=example.org', '/admin/tenants/new',
      `/admin/tenants/${realKey}`, `/admin/tenants/${realKey}?tab=domains`, `/admin/tenants/${realKey}?tab=users`, `/admin/tenants/${realKey}?tab=users&q=user%2000&find=user%209`, `/admin/tenants/${otherReal}`,
      `/admin/tenants/${member}`, `/admin/tenants/${realKey}/edit`, `/admin/tenants/${realKey}/status`, `/admin/tenants/${realKey}/delete`, `/admin/tenants/${realKey}/domains/${domainId}/delete`, `/admin/tenants/${realKey}/user-candidates?find=user%2012`,
      '/admin/clusters', '/admin/clusters/new', `/admin/clusters/${ids.cluster}`, `/admin/clusters/${ids.cluster}?q=tenant-012&page=2`, `/admin/clusters/${ids.cluster}?find=tenant-09`, `/admin/clusters/${ids.cluster}?tab=details`,
      `/admin/clusters/${ids.cluster}/edit`, `/admin/clusters/${ids.cluster}/delete`, `/admin/clusters/${ids.cluster}/candidates?find=tenant-08`, `/admin/clusters/${ids.cluster}/parent/${member}`, `/admin/clusters/${ids.cluster}/detach/${member}`,
      '/admin/users', '/admin/users?q=user%2007', '/admin/users?sort=tenants&dir=desc', '/admin/users?page=400', '/admin/users/new', `/admin/users/${ids.user}`, `/admin/users/${ids.user}?find=tenant-5`, `/admin/users/${ids.user}/edit`, `/admin/users/${ids.user}/candidates?find=tenant-33`, `/admin/users/${ids.user}/delete`,
      '/admin/admins', '/admin/admins/new', `/admin/admins/${ids.admin}/edit`, '/admin/admins/roles',
      '/admin/audit', '/admin/audit?page=300', '/admin/audit?action=tenant.', `/admin/audit?tenant=${member}`,
      `/admin/tenants/${realKey}/move`, '/admin/tenants/import',
      '/admin/fleet', '/admin/fleet?page=250', '/admin/fleet/rollouts/new', `/admin/fleet/rollouts/${rollout.id}`
    ]
    for (const url of pages) times.set(url, [])
    const open = async (url: string): Promise<void> => {
      current = url
      const res = await app.inject({ url, headers: { host: 'localhost', cookie, 'x-bench-page': url } })
      if (res.statusCode >= 400) throw new Error(`${url} answered ${res.statusCode}`)
    }
    for (const url of pages) await open(url)
    for (const url of pages) (times.get(url) as number[]).length = 0
    for (let r = 0; r < ROUNDS; r++) for (const url of pages) await open(url)
    current = ''
    const all = [...times.values()].flat().sort((a, b) => a - b)
    const p95 = all[Math.min(all.length - 1, Math.ceil(all.length * 0.95) - 1)] as number
    const slowest = [...times.entries()]
      .map(([url, ms]) => [url, [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] as number] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, Number(process.env.BENCH_SLOWEST ?? 3))
    ctx.log(`admin.pages: p95 ${round(p95, 1)} ms over ${all.length} page views; slowest medians: ${slowest.map(([u, ms]) => `${u.replace(/[0-9a-f-]{36}/g, ':id')} ${round(ms, 1)} ms`).join(', ')}`)
    return [{ name: 'admin.pages.p95.ms', value: round(p95, 1), unit: 'ms', note: `${pages.length} admin pages × ${ROUNDS}, 10,000 tenants and users, server time (reply.elapsedTime)` }]
  } finally {
    await app.close()
    await central.drop()
  }
}
