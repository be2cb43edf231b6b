// Part of `npm run build`: copies Pico's stylesheet into dist/assets, so the
// published package serves it without depending on @picocss/pico at run time.
import { copyFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'

mkdirSync('dist/assets', { recursive: true })
copyFileSync(createRequire(import.meta.url).resolve('@picocss/pico/css/pico.min.css'), 'dist/assets/pico.min.css')
