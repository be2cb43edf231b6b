import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))

/** The Markdown files whose TypeScript blocks are checked: the README and every page under docs/. */
function documents (): string[] {
  const docs = join(root, 'docs')
  const pages = existsSync(docs) ? readdirSync(docs, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join(docs, f)) : []
  return [join(root, 'README.md'), ...pages.sort()]
}

interface Block { file: string, line: number, code: string }

/** Every ```ts block (a block marked ```ts no-check is left out: output, or a fragment on purpose). */
function blocks (file: string): Block[] {
  const found: Block[] = []
  const lines = readFileSync(file, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(ts|typescript)(\s.*)?$/.exec(lines[i] as string)
    if (fence === null) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !(lines[end] as string).startsWith('```')) end++
    if (!(fence[2] ?? '').includes('no-check')) found.push({ file, line: start + 1, code: lines.slice(start, end).join('\n') })
    i = end
  }
  return found
}

// Names the examples use without making them: what a reader has in hand at
// that point of a page (the app, a tenant, a URL). Declared once, here, so a
// block shows only what it teaches.
const PRELUDE = `
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Tenant, IdentityResolver, ProviderDriver } from 'fastify-tenancy'
declare global {
  const app: FastifyInstance
  const tenant: Tenant
  const acme: Tenant
  const globex: Tenant
  const url: string
  const database: { url: string }
  const east: { id: string }
  const userId: string
  const id: string
  const email: string
  const rateLimit: FastifyPluginAsync<any>
  const myTeamsDriver: ProviderDriver
  const myResolver: IdentityResolver
}
export {}
`

async function tsc (cwd: string): Promise<string> {
  const bin = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  return await new Promise((resolve) => {
    execFile(process.execPath, [bin, '-p', cwd, '--pretty', 'false'], { cwd, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) => { resolve(stdout + stderr) })
  })
}

test('every TypeScript example in the README and docs/ type-checks against the library', async (t) => {
  const all = documents().flatMap(blocks)
  assert.ok(all.length > 0, 'the README has TypeScript examples')
  // Inside the repository, so the examples' imports of fastify and MikroORM resolve to its node_modules.
  await mkdir(join(root, '.tmp'), { recursive: true })
  const work = await mkdtemp(join(root, '.tmp', 'docs-code-'))
  t.after(async () => { await rm(work, { recursive: true, force: true }) })
  const names = new Map<string, Block>()
  for (const [i, block] of all.entries()) {
    const name = `block${String(i).padStart(3, '0')}.ts`
    names.set(name, block)
    // Each block is a module of its own (top-level await, its own imports).
    await writeFile(join(work, name), `${block.code}\nexport {}\n`)
  }
  await writeFile(join(work, 'prelude.d.ts'), PRELUDE)
  const server = relative(work, join(root, 'server')).replaceAll('\\', '/')
  await writeFile(join(work, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      baseUrl: '.',
      paths: {
        'fastify-tenancy': [`${server}/index.ts`],
        'fastify-tenancy/admin': [`${server}/admin/index.ts`],
        'fastify-tenancy/testing': [`${server}/testing/index.ts`]
      }
    },
    include: ['*.ts']
  }))
  await writeFile(join(work, 'package.json'), JSON.stringify({ type: 'module' }))
  const output = await tsc(work)
  // Errors name the block's file: turn them back into the Markdown file and line.
  const problems = output.split('\n').filter((l) => /^block\d{3}\.ts\(\d+,\d+\): error/.test(l)).map((l) => {
    const [, name, line, rest] = /^(block\d{3}\.ts)\((\d+),\d+\): (.*)$/.exec(l) as RegExpExecArray
    const block = names.get(name as string) as Block
    return `${relative(root, block.file)}:${block.line + Number(line) - 1}: ${rest as string}`
  })
  const elsewhere = output.split('\n').filter((l) => /error TS/.test(l) && !/^block\d{3}\.ts/.test(l))
  assert.deepEqual([...problems, ...elsewhere], [], 'examples that do not type-check')
})
