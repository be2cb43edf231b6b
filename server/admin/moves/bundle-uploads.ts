import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { FastifyInstance, FastifyPluginAsync, FastifyPluginCallback, FastifyRequest } from 'fastify'
import type { MultipartFile } from '@fastify/multipart'

/**
 * An uploaded bundle, written to a temporary file as it arrives (a tenant's
 * data may not fit in memory) and removed when the response is sent. The
 * form's other fields (the CSRF token among them) become the body as a plain
 * form's would, so the CSRF check is the same as everywhere else.
 */
export class BundleUploads {
  private readonly files = new WeakMap<FastifyRequest, string>()

  constructor (private readonly multipart: FastifyPluginCallback<any> | FastifyPluginAsync<any>, private readonly maxBytes: number) {}

  /** Lets the routes of `scope` take multipart forms with one file field, `bundle`. */
  async accept (scope: FastifyInstance): Promise<void> {
    const files = this.files
    await scope.register(this.multipart, {
      attachFieldsToBody: 'keyValues',
      limits: { files: 1, fileSize: this.maxBytes, fields: 10, fieldSize: 4096 },
      throwFileSizeLimit: true,
      async onFile (this: FastifyRequest, part: MultipartFile) {
        if (part.fieldname !== 'bundle' || part.filename === '') { part.file.resume(); return }
        const dir = await mkdtemp(join(tmpdir(), 'ft-bundle-'))
        const path = join(dir, 'upload.tenancy')
        files.set(this, path)
        await pipeline(part.file, createWriteStream(path))
        // The file field's value in the body is only a marker: the path is never read from what the browser sent.
        ;(part as unknown as { value: string }).value = 'uploaded'
      }
    })
    scope.addHook('onResponse', async (request) => {
      const path = files.get(request)
      if (path !== undefined) await rm(join(path, '..'), { recursive: true, force: true })
    })
  }

  /** The uploaded bundle's temporary path, or null when no file came. */
  fileOf (request: FastifyRequest): string | null {
    return this.files.get(request) ?? null
  }
}
