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
