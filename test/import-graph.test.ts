import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const ROOT = resolve(import.meta.dirname, '..')

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : []
  })
}

/** Every relative import of a file (type-only ones and re-exports included), as absolute .ts paths. */
function importsOf (file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => resolve(dirname(file), name.replace(/\.js$/, '.ts')))
}

/** The cycles found by a depth-first walk, each as the list of files on it. */
function cycles (files: string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i))]))
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const found: string[][] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    stack.push(file)
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(ROOT, f)))
      else if (state.get(next) === undefined) visit(next)
    }
    stack.pop()
    state.set(file, 'done')
  }
  for (const file of files) if (state.get(file) === undefined) visit(file)
  return found
}

test('the library\'s import graph has no cycle, type-only imports included', () => {
  const found = cycles([...sources(join(ROOT, 'server')), ...sources(join(ROOT, 'migrations'))])
  assert.deepEqual(found, [], found.map((c) => c.join(' -> ')).join('\n'))
})

test('the cycle check finds a cycle when there is one', () => {
  // Guards the check itself: a walk that never reports anything would pass the test above.
  const graph = cycles([join(ROOT, 'test', 'fixtures', 'cycle-a.ts'), join(ROOT, 'test', 'fixtures', 'cycle-b.ts')])
  assert.equal(graph.length, 1)
})

/**
 * The library's layers, lowest first: a file imports only from its own layer
 * or one below. The bottom holds what knows no tenancy concept (and the
 * tenant contract and errors everyone names); the composition root files
 * (`tenancy.ts`, `plugin.ts`, `index.ts`, …) sit over every concept folder,
 * and only the outer folders (testing, admin, cli, demo) build on them.
 */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['support', 'errors.ts', 'misuse.ts', 'tenant.ts', 'lru.ts', 'package-root.ts'],
  ['entities'],
  ['database'],
  ['context', 'events'],
  ['bootstrappers', 'jobs', 'providers'],
  ['identification'],
  ['renames', 'maintenance', 'impersonation', 'telemetry'],
  ['lifecycle'],
  ['clusters', 'sync'],
  ['moves', 'rollouts'],
  ['options'],
  ['types.ts', 'tenancy-api.ts', 'tenancy.ts', 'route-guard.ts', 'plugin.ts', 'tenancies.ts', 'index.ts'],
  ['testing', 'admin', 'cli'],
  ['demo']
]

/** A server file's place: its top folder, or its own name for a file at the root. */
const placeOf = (file: string): string => relative(join(ROOT, 'server'), file).split('/')[0] as string
const layerOf = (file: string): number => LAYERS.findIndex((layer) => layer.includes(placeOf(file)))

/** Imports that reach a higher layer than their file's, as "from -> to". */
function upward (files: string[], imports: (file: string) => string[] = importsOf): string[] {
  return files.flatMap((file) => imports(file)
    .filter((target) => target.startsWith(join(ROOT, 'server')) && layerOf(target) > layerOf(file))
    .map((target) => `${relative(ROOT, file)} -> ${relative(ROOT, target)}`))
}

test('every folder and root file of server/ has a place in the layers', () => {
  const places = [...new Set(sources(join(ROOT, 'server')).map(placeOf))]
  assert.deepEqual(places.filter((place) => LAYERS.every((layer) => !layer.includes(place))), [], 'a new folder or root file needs a layer')
})

test('no import runs from a lower layer to a higher one', () => {
  const found = upward(sources(join(ROOT, 'server')))
  assert.deepEqual(found, [], found.join('\n'))
})

test('the layer check finds an import that runs upward', () => {
  // Guards the check itself: a helper naming the composition root, and a concept folder naming the admin, are reported; the other way round is not.
  const at = (path: string): string => join(ROOT, 'server', path)
  const graph: Record<string, string[]> = { [at('support/x.ts')]: [at('tenancy.ts')], [at('sync/x.ts')]: [at('admin/index.ts'), at('database/x.ts')], [at('admin/x.ts')]: [at('sync/x.ts')] }
  assert.deepEqual(upward(Object.keys(graph), (file) => graph[file] ?? []), ['server/support/x.ts -> server/tenancy.ts', 'server/sync/x.ts -> server/admin/index.ts'])
})
