import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let root: string | undefined

/**
 * The folder of fastify-tenancy's package.json (where views/ and public/
 * live), found by walking up from this file: the same from the TypeScript
 * sources and from the built dist/.
 */
export function packageRoot (): string {
  if (root !== undefined) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'fastify-tenancy') return (root = dir)
    const parent = dirname(dir)
    if (parent === dir) throw new Error('fastify-tenancy cannot find its package.json above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
}
