// Starts the demo for the e2e tests on a fresh embedded PostgreSQL of its own.
import { rm } from 'node:fs/promises'

await rm(process.env.DEMO_DATA_DIR ?? '.tmp/e2e-data', { recursive: true, force: true })
await import('../server/demo/start.js')
