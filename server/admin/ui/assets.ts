import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { extname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { misuse } from '../../misuse.js'

/**
 * The admin's few static files (its CSS, script, icon and Pico's stylesheet),
 * read once at register and answered from memory with an ETag. A static-file
 * plugin would bring about thirty packages into every app for five files.
 */
const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon'
}

interface Asset { readonly body: Buffer, readonly type: string, readonly etag: string }

/**
 * Pico's stylesheet: from the @picocss/pico development dependency when it is
 * installed (a checkout), else the copy the build puts in dist/assets (the
 * published package, which does not depend on Pico at run time).
 */
function picoPath (root: string): string {
  try {
    return createRequire(import.meta.url).resolve('@picocss/pico/css/pico.min.css')
  } catch {
    const copy = join(root, 'dist', 'assets', 'pico.min.css')
    if (existsSync(copy)) return copy
    throw misuse.adminStylesheetMissing(copy)
  }
}

function load (files: Array<[name: string, path: string]>): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  for (const [name, path] of files) {
    const type = TYPES[extname(name)]
    if (type === undefined) continue
    const body = readFileSync(path)
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return assets
}

/** Serves `GET <scope prefix>/assets/<name>` for the files of public/ and Pico's stylesheet. */
export function adminAssets (scope: FastifyInstance, root: string): void {
  const publicDir = join(root, 'public')
  const assets = load([
    ['pico.min.css', picoPath(root)],
    ...readdirSync(publicDir).map((name): [string, string] => [name, join(publicDir, name)])
  ])
  scope.get<{ Params: { name: string } }>('/assets/:name', { config: { admin: 'public' } }, async (request, reply) => {
    const asset = assets.get(request.params.name)
    if (asset === undefined) return await reply.callNotFound()
    // Names are not fingerprinted: a browser asks again each hour and gets 304 while the file is the same.
    reply.header('cache-control', 'public, max-age=3600').header('etag', asset.etag)
    if (request.headers['if-none-match'] === asset.etag) return await reply.code(304).send()
    return await reply.type(asset.type).send(asset.body)
  })
}
