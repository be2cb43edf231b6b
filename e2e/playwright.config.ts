import { defineConfig } from '@playwright/test'
import { E2E } from './env.js'

export default defineConfig({
  testDir: '.',
  testMatch: /.*\.e2e\.ts$/,
  outputDir: './artifacts/results',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // Generous: this machine is shared, and a flow with several axe runs can take minutes under load.
  timeout: 180_000,
  // A flow that hangs fails the run well inside CI's limit instead of holding it.
  globalTimeout: 45 * 60_000,
  reporter: [['list']],
  use: {
    baseURL: `http://localhost:${E2E.port}`,
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
    }
  },
  webServer: {
    command: 'node --import tsx e2e/serve.ts',
    cwd: '..',
    // Node cannot resolve *.localhost; readiness is checked on 127.0.0.1, a central domain.
    url: `http://127.0.0.1:${E2E.port}/admin/login`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
    env: {
      PORT: String(E2E.port),
      HOST: '127.0.0.1',
      DEMO_PG_PORT: String(E2E.pgPort),
      DEMO_DATA_DIR: E2E.dataDir,
      DEMO_REUSE_PG: '0',
      // Thrown away after the run: no fsync, so each tenant's CREATE DATABASE is quick.
      DEMO_PG_DURABLE: '0',
      ADMIN_EMAIL: E2E.adminEmail,
      ADMIN_PASSWORD: E2E.adminPassword,
      LOG_LEVEL: 'warn',
      // One address signs in for every spec: lift the per-address limit (its own node test covers it).
      ADMIN_SIGN_IN_LIMIT: '1000',
      DATABASE_URL: '',
      // A second database host (both servers with wal_level=logical): the admin's Move action has somewhere to move a tenant.
      DEMO_SECOND_HOST: '1'
    }
  }
})
