import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { sql, urlFor, type CentralDatabase } from './helpers/database.js'
import { sharedTables, tenantView } from './helpers/shared.js'
import { CentralUserEntity, TenantUserEntity, type Tenant } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'
import { tenancyRuntime } from '../server/tenancy.js'

const MODES = ['inline', 'queued'] as const
const STRATEGIES = ['database', 'shared'] as const
type Strategy = typeof STRATEGIES[number]

interface World {
  app: FastifyInstance
  central: string
  /** a and b get the user; c never does. */
  a: Tenant
  b: Tenant
  c: Tenant
  db: (t: Tenant) => string
  settle: () => Promise<void>
  writes: (url: string) => Promise<number>
}

/** Counts writes to a users table with a real trigger. */
async function countWrites (url: string, users = 'users'): Promise<void> {
  await sql(url, `create table if not exists public.write_log (op text);
    create or replace function public.log_write() returns trigger language plpgsql as $$ begin insert into public.write_log values (tg_op); return null; end $$;
    drop trigger if exists users_write_log on ${users};
    create trigger users_write_log after insert or update or delete on ${users} for each row execute function public.log_write();`)
}

/** Strategy shared: the same trigger on the shared users table, logging into a tenant table (so each tenant counts its own writes). */
async function countSharedWrites (central: CentralDatabase): Promise<void> {
  await sharedTables(central, [`create table if not exists write_log (op text);
    create or replace function log_write() returns trigger language plpgsql as $$ begin
      begin insert into tenant_shared.write_log values (tg_op); exception when others then null; end; return null; end $$;
    drop trigger if exists users_write_log on users;
    create trigger users_write_log after insert or update or delete on users for each row execute function log_write();`])
}

async function world (t: import('node:test').TestContext, strategy: Strategy, mode: typeof MODES[number], extra: Record<string, unknown> = {}): Promise<World> {
  const { app, central } = await buildApp(t, {
    strategy,
    identification: ['header'],
    sync: { mode, resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'], ...extra }] }
  })
  const [a, b, c] = [await app.tenancy.create({ identifier: 'a' }), await app.tenancy.create({ identifier: 'b' }), await app.tenancy.create({ identifier: 'c' })] as [Tenant, Tenant, Tenant]
  // Strategy shared: a tenant's "database" is its rows of the shared tables, seen through a tenant view.
  const views = new Map<string, string>()
  if (strategy === 'shared') for (const tenant of [a, b, c]) views.set(tenant.key, await tenantView(central, tenant.key))
  const db = (tenant: Tenant): string => views.get(tenant.key) ?? urlFor(app.tenancy.tenants.databaseName(tenant))
  if (strategy === 'shared') {
    await countWrites(central.url, 'tenancy.users')
    await countSharedWrites(central)
  } else {
    await countWrites(central.url, 'tenancy.users')
    for (const url of [db(a), db(b), db(c)]) await countWrites(url)
  }
  return {
    app,
    central: central.url,
    a,
    b,
    c,
    db,
    settle: async () => { await app.tenancy.sync!.settle() },
    writes: async (url) => Number((await sql(url, 'select count(*)::int as n from write_log'))[0]?.n)
  }
}

async function centralUser (w: World, values: { name: string, email: string, globalId?: string }): Promise<string> {
  const em = w.app.tenancy.orm.em.fork()
  const user = em.create(CentralUserEntity, { password: 'hash', ...values } as never)
  await em.flush()
  return String(user.globalId)
}

async function rows (url: string): Promise<Array<Record<string, unknown>>> {
  return await sql(url, 'select global_id, name, email, role from users order by global_id')
}

for (const strategy of STRATEGIES) {
  for (const mode of MODES) {
    const tag = strategy === 'database' ? mode : `${strategy}, ${mode}`
    test(`[${tag}] a user created centrally exists only centrally until attached; attaching copies the whole row`, async (t) => {
      const w = await world(t, strategy, mode)
      const gid = await centralUser(w, { name: 'Jane', email: 'jane@x.test' })
      assert.match(gid, /^[0-9a-f-]{36}$/, 'a global id is generated')
      await w.settle()
      for (const tenant of [w.a, w.b, w.c]) assert.deepEqual(await rows(w.db(tenant)), [])
      await w.app.tenancy.sync!.attach('users', gid, w.a)
      // Attaching through the ORM (a pivot row) works the same.
      const em = w.app.tenancy.orm.em.fork()
      em.create(TenantUserEntity, { tenantKey: w.b.key, globalUserId: gid } as never)
      await em.flush()
      await w.settle()
      for (const tenant of [w.a, w.b]) assert.deepEqual(await rows(w.db(tenant)), [{ global_id: gid, name: 'Jane', email: 'jane@x.test', role: 'member' }])
      assert.deepEqual(await rows(w.db(w.c)), [])
      assert.deepEqual(await sql(w.db(w.c), 'select * from fastify_tenancy_sync_state'), [], 'the tenant without the user is untouched')
    })

    test(`[${tag}] central updates reach every copy; only synced attributes count; one change makes one write per copy`, async (t) => {
      const w = await world(t, strategy, mode)
      const gid = await centralUser(w, { name: 'Jane', email: 'jane@x.test' })
      await w.app.tenancy.sync!.attach('users', gid, w.a)
      await w.app.tenancy.sync!.attach('users', gid, w.b)
      await w.settle()
      const before = await Promise.all([w.central, w.db(w.a), w.db(w.b), w.db(w.c)].map(w.writes))
      const em = w.app.tenancy.orm.em.fork()
      const user = await em.findOneOrFail(CentralUserEntity, { globalId: gid })
      user.name = 'Jane Central'
      await em.flush()
      await w.settle()
      const after = await Promise.all([w.central, w.db(w.a), w.db(w.b), w.db(w.c)].map(w.writes))
      assert.deepEqual(after.map((n, i) => n - (before[i] as number)), [1, 1, 1, 0], 'one write centrally (the change) and one per copy, none elsewhere')
      for (const tenant of [w.a, w.b]) assert.equal((await rows(w.db(tenant)))[0]?.name, 'Jane Central')

      // A role change in a tenant is not synced: nothing else is written.
      const mid = await Promise.all([w.central, w.db(w.a), w.db(w.b)].map(w.writes))
      await w.app.tenancy.run(w.a, async (scope) => {
        const copy = await scope.em.findOneOrFail(TenantUserCopyEntity, { globalId: gid })
        copy.role = 'owner'
        await scope.em.flush()
      })
      await w.settle()
      const end = await Promise.all([w.central, w.db(w.a), w.db(w.b)].map(w.writes))
      assert.deepEqual(end.map((n, i) => n - (mid[i] as number)), [0, 1, 0])
      assert.equal((await rows(w.db(w.b)))[0]?.role, 'member')
    })

    test(`[${tag}] a tenant update reaches the central row and the other copies; unsynced attributes stay per side`, async (t) => {
      const w = await world(t, strategy, mode)
      const gid = await centralUser(w, { name: 'Jane', email: 'jane@x.test' })
      await w.app.tenancy.sync!.attach('users', gid, w.a)
      await w.app.tenancy.sync!.attach('users', gid, w.b)
      await w.settle()
      await w.app.tenancy.run(w.a, async (scope) => {
        const copy = await scope.em.findOneOrFail(TenantUserCopyEntity, { globalId: gid })
        copy.name = 'Jane From A'
        copy.email = 'jane@a.test'
        copy.role = 'admin'
        await scope.em.flush()
      })
      await w.settle()
      assert.deepEqual((await sql(w.central, 'select name, email from tenancy.users'))[0], { name: 'Jane From A', email: 'jane@a.test' })
      assert.deepEqual(await rows(w.db(w.b)), [{ global_id: gid, name: 'Jane From A', email: 'jane@a.test', role: 'member' }])
      assert.equal((await rows(w.db(w.a)))[0]?.role, 'admin')
      assert.deepEqual(await rows(w.db(w.c)), [])
    })

    test(`[${tag}] a user created in a tenant with a global id creates the central row 1:1 and the pivot, and updates other copies`, async (t) => {
      const w = await world(t, strategy, mode, { creationDefaults: { tenant: () => ({ role: 'guest' }) } })
      // Exists centrally and in b already.
      const gid = await centralUser(w, { name: 'Old', email: 'old@x.test' })
      await w.app.tenancy.sync!.attach('users', gid, w.b)
      await w.settle()
      assert.equal((await rows(w.db(w.b)))[0]?.role, 'guest', 'creation defaults apply to the new copy')
      await w.app.tenancy.run(w.a, async (scope) => {
        scope.em.create(TenantUserCopyEntity, { globalId: gid, name: 'New', email: 'new@x.test', password: 'p', role: 'owner' } as never)
        await scope.em.flush()
      })
      await w.settle()
      assert.deepEqual(await sql(w.central, 'select tenant_key from tenancy.tenant_users order by tenant_key'), [w.a.key, w.b.key].sort().map((k) => ({ tenant_key: k })))
      assert.deepEqual((await sql(w.central, 'select name, email from tenancy.users')), [{ name: 'New', email: 'new@x.test' }])
      assert.deepEqual((await rows(w.db(w.b)))[0], { global_id: gid, name: 'New', email: 'new@x.test', role: 'guest' })

      // A brand-new user created in a tenant: the central row is a 1:1 copy.
      let fresh = ''
      await w.app.tenancy.run(w.c, async (scope) => {
        const u = scope.em.create(TenantUserCopyEntity, { name: 'Only C', email: 'c@x.test', password: 'secret-hash' } as never)
        await scope.em.flush()
        fresh = String(u.globalId)
      })
      await w.settle()
      assert.deepEqual(await sql(w.central, 'select name, email, password from tenancy.users where global_id = $1', [fresh]), [{ name: 'Only C', email: 'c@x.test', password: 'secret-hash' }])
      assert.deepEqual(await sql(w.central, 'select tenant_key from tenancy.tenant_users where global_user_id = $1', [fresh]), [{ tenant_key: w.c.key }])
    })

    test(`[${tag}] detaching, deleting a copy, deleting centrally and deleting a tenant each remove what they should`, async (t) => {
      const w = await world(t, strategy, mode)
      const gid = await centralUser(w, { name: 'Jane', email: 'jane@x.test' })
      for (const tenant of [w.a, w.b, w.c]) await w.app.tenancy.sync!.attach('users', gid, tenant)
      await w.settle()
      await w.app.tenancy.sync!.detach('users', gid, w.a)
      await w.settle()
      assert.deepEqual(await rows(w.db(w.a)), [])
      // Detaching through the ORM (removing the pivot row) works the same.
      const em = w.app.tenancy.orm.em.fork()
      em.remove(await em.findOneOrFail(TenantUserEntity, { tenantKey: w.c.key, globalUserId: gid }))
      await em.flush()
      await w.settle()
      assert.deepEqual(await rows(w.db(w.c)), [])
      assert.equal((await rows(w.db(w.b))).length, 1)

      // Deleting b's copy removes only b's pivot row.
      await w.app.tenancy.sync!.attach('users', gid, w.a)
      await w.settle()
      await w.app.tenancy.run(w.b, async (scope) => {
        scope.em.remove(await scope.em.findOneOrFail(TenantUserCopyEntity, { globalId: gid }))
        await scope.em.flush()
      })
      await w.settle()
      assert.deepEqual(await sql(w.central, 'select tenant_key from tenancy.tenant_users'), [{ tenant_key: w.a.key }])
      assert.equal((await sql(w.central, 'select 1 from tenancy.users')).length, 1, 'the central row stays')
      assert.equal((await rows(w.db(w.a))).length, 1)

      // A central delete removes every copy and the pivot rows.
      const em2 = w.app.tenancy.orm.em.fork()
      em2.remove(await em2.findOneOrFail(CentralUserEntity, { globalId: gid }))
      await em2.flush()
      await w.settle()
      assert.deepEqual(await rows(w.db(w.a)), [])
      assert.deepEqual(await sql(w.central, 'select 1 from tenancy.tenant_users'), [])

      // Deleting a tenant removes its pivot rows.
      const other = await centralUser(w, { name: 'Other', email: 'o@x.test' })
      await w.app.tenancy.sync!.attach('users', other, w.b)
      await w.settle()
      await w.app.tenancy.delete(w.b)
      assert.deepEqual(await sql(w.central, 'select 1 from tenancy.tenant_users'), [])
    })

    test(`[${tag}] two quick updates end with the later value everywhere, from one side or from two tenants`, async (t) => {
      const w = await world(t, strategy, mode)
      const gid = await centralUser(w, { name: 'v0', email: 'v@x.test' })
      for (const tenant of [w.a, w.b]) await w.app.tenancy.sync!.attach('users', gid, tenant)
      await w.settle()
      const em = w.app.tenancy.orm.em.fork()
      const user = await em.findOneOrFail(CentralUserEntity, { globalId: gid })
      user.name = 'v1'
      await em.flush()
      user.name = 'v2'
      await em.flush()
      await w.settle()
      for (const url of [w.central, w.db(w.a), w.db(w.b)]) assert.equal((await sql(url, `select name from ${url === w.central ? 'tenancy.' : ''}users`))[0]?.name, 'v2', url)

      await w.app.tenancy.run(w.a, async (scope) => { const u = await scope.em.findOneOrFail(TenantUserCopyEntity, { globalId: gid }); u.name = 'from a'; await scope.em.flush() })
      await w.app.tenancy.run(w.b, async (scope) => { const u = await scope.em.findOneOrFail(TenantUserCopyEntity, { globalId: gid }); u.name = 'from b, later'; await scope.em.flush() })
      await w.settle()
      for (const url of [w.central, w.db(w.a), w.db(w.b)]) assert.equal((await sql(url, `select name from ${url === w.central ? 'tenancy.' : ''}users`))[0]?.name, 'from b, later', url)
    })

    test(`[${tag}] a tenant entity saved outside a tenant context is refused`, async (t) => {
      const w = await world(t, strategy, mode)
      const lease = tenancyRuntime(w.app.tenancy).connections.lease(w.app.tenancy.tenants.target(w.a))
      try {
      // Refused when the entity is made (strategy shared: its tenant key comes from the context) or at the flush.
        await assert.rejects(async () => {
          lease.em.create(TenantUserCopyEntity, { name: 'x', email: 'x@x.test', password: 'p' } as never)
          await lease.em.flush()
        }, (e: any) => e.code === 'FST_TENANCY_NO_TENANT_CONTEXT')
      } finally {
        lease.release()
      }
      // Nor with another tenant's EntityManager inside this tenant's context.
      await w.app.tenancy.run(w.b, async () => {
        const other = tenancyRuntime(w.app.tenancy).connections.lease(w.app.tenancy.tenants.target(w.a))
        try {
        // Refused before anything is written: the EntityManager belongs to tenant a.
          await assert.rejects(async () => {
            other.em.create(TenantUserCopyEntity, { name: 'y', email: 'y@x.test', password: 'p' } as never)
            await other.em.flush()
          }, (e: any) => e.code === 'FST_TENANCY_WRONG_TENANT')
        } finally {
          other.release()
        }
      })
      assert.deepEqual(await rows(w.db(w.a)), [])
    })
  }

  test(`${strategy === 'database' ? '' : `[${strategy}] `}resync sends the central values to every copy again, mending a copy changed behind the syncer's back`, async (t) => {
    const w = await world(t, strategy, 'inline')
    const gid = await centralUser(w, { name: 'Right', email: 'r@x.test' })
    for (const tenant of [w.a, w.b]) await w.app.tenancy.sync!.attach('users', gid, tenant)
    await sql(w.db(w.a), "update users set name = 'Drifted'")
    await w.app.tenancy.sync!.resync('users', gid)
    for (const tenant of [w.a, w.b]) assert.equal((await rows(w.db(tenant)))[0]?.name, 'Right')
    assert.deepEqual(await rows(w.db(w.c)), [])
  })
}
