// What an app pays in node_modules for fastify-tenancy: the example app's
// production install, fresh from the packed tarball, against the same install
// of fastify and MikroORM alone (the versions the example names). Needs the npm
// registry; the PostgreSQL server of the bench is not used.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { BenchContext, Figure } from './figures.js'
import { round } from './figures.js'

export const installFigures = ['install.consumer.extra.packages', 'install.consumer.extra.mb', 'install.consumer.packages', 'install.consumer.mb'] as const

/** Packages fastify-tenancy never brings itself: the app chooses their versions. */
const BASE = ['fastify', '@mikro-orm/core', '@mikro-orm/postgresql', '@mikro-orm/migrations']

async function run (command: string, args: string[], cwd: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** Every installed package (each folder with a package.json under node_modules, scoped and nested ones too). */
function countPackages (modules: string): number {
  let count = 0
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue
      const path = join(dir, entry.name)
      if (entry.name.startsWith('@')) { visit(path); continue }
      if (existsSync(join(path, 'package.json'))) count++
      visit(join(path, 'node_modules'))
    }
  }
  visit(modules)
  return count
}

async function sizeMb (dir: string): Promise<number> {
  const out = await run('du', ['-sk', dir], '.')
  return Number(out.split('\t')[0]) / 1024
}

/** The app whose install is measured: the example's package.json, or a bare consumer when there is no example. */
async function consumerManifest (tarball: string): Promise<{ dependencies: Record<string, string> }> {
  const examples = resolve('examples')
  const first = existsSync(examples) ? readdirSync(examples).sort().find((d) => existsSync(join(examples, d, 'package.json'))) : undefined
  if (first === undefined) {
    const own = JSON.parse(await readFile('package.json', 'utf8')) as { devDependencies: Record<string, string> }
    return { dependencies: { ...Object.fromEntries(BASE.map((p) => [p, own.devDependencies[p] as string])), 'fastify-tenancy': `file:${tarball}` } }
  }
  const manifest = JSON.parse(await readFile(join(examples, first, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  // The example's ranges at the exact versions this repository develops with, so both installs (and every run) compare the same versions.
  const own = JSON.parse(await readFile('package.json', 'utf8')) as { devDependencies: Record<string, string> }
  const pinned = Object.fromEntries(Object.entries(manifest.dependencies).map(([name, range]) => [name, own.devDependencies[name]?.replace(/^[\^~]/, '') ?? range]))
  return { dependencies: { ...pinned, 'fastify-tenancy': `file:${tarball}` } }
}

async function install (dir: string, dependencies: Record<string, string>): Promise<{ packages: number, mb: number }> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }, null, 2))
  await run('npm', ['install', '--omit=dev', '--omit=optional', '--omit=peer', '--no-package-lock', '--ignore-scripts'], dir)
  return { packages: countPackages(join(dir, 'node_modules')), mb: await sizeMb(join(dir, 'node_modules')) }
}

export async function consumerInstall (ctx: BenchContext): Promise<Figure[]> {
  const work = await mkdtemp(join(tmpdir(), 'fastify-tenancy-install-'))
  try {
    ctx.log('packing the library…')
    const packed = (await run('npm', ['pack', '--pack-destination', work, '--silent'], '.')).trim().split('\n').pop() as string
    const tarball = join(work, packed)
    const app = await consumerManifest(tarball)
    const base = Object.fromEntries(BASE.map((p) => [p, app.dependencies[p] ?? 'latest']))
    ctx.log('installing fastify and MikroORM alone…')
    const alone = await install(join(work, 'alone'), base)
    ctx.log('installing the app with fastify-tenancy…')
    const full = await install(join(work, 'app'), app.dependencies)
    return [
      { name: 'install.consumer.extra.packages', value: full.packages - alone.packages, unit: 'pkgs', note: `${full.packages} against ${alone.packages} for fastify and MikroORM alone (target ≤ 45)` },
      { name: 'install.consumer.extra.mb', value: round(full.mb - alone.mb, 1), unit: 'MB', note: `${round(full.mb, 1)} against ${round(alone.mb, 1)} (target ≤ 25)` },
      { name: 'install.consumer.packages', value: full.packages, unit: 'pkgs', note: 'the app\'s whole production install' },
      { name: 'install.consumer.mb', value: round(full.mb, 1), unit: 'MB' }
    ]
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
