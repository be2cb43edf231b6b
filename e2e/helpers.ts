import { expect, type Locator, type Page } from '@playwright/test'
import { AxeBuilder } from '@axe-core/playwright'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { hashPassword } from '../server/admin/auth/password.js'
import { E2E, centralDbUrl, serverUrl } from './env.js'

export async function signIn (page: Page, email = E2E.adminEmail, password = E2E.adminPassword): Promise<void> {
  await page.goto('/admin/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).toHaveURL(/\/admin$/)
}

/** No accessibility violations at all on the page, of any impact. */
export async function expectAccessible (page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze()
  expect(results.violations.map((v) => `${v.id} (${String(v.impact)}): ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), page.url()).toEqual([])
}

/** Keeps a screenshot of the page as a test artifact (e2e/artifacts is git-ignored). */
export async function keepScreenshot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `artifacts/screenshots/${name}.png`, fullPage: true })
}

export async function sql<T = Record<string, any>> (url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, params)).rows as T[]
  } finally {
    await client.end()
  }
}

/** Makes an admin whose role holds only `permissions`, straight in the central database. */
export async function makeAdmin (permissions: string[]): Promise<{ email: string, password: string }> {
  const id = uuidv7()
  const email = `limited-${id.slice(-8)}@example.test`
  const password = 'limited admin password'
  await sql(centralDbUrl(), 'insert into tenancy.admins (id, email, name, password_hash) values ($1, $2, $3, $4)', [id, email, 'Limited Admin', await hashPassword(password)])
  const role = await sql<{ id: number }>(centralDbUrl(), 'insert into tenancy.admin_roles (name, permissions) values ($1, $2) returning id', [`limited-${id}`, permissions])
  await sql(centralDbUrl(), 'insert into tenancy.admin_role_assignments (admin_id, role_id) values ($1, $2)', [id, role[0]?.id])
  return { email, password }
}

/** A result the admin shows: a toast (an action taken in place) or a notice at the top of a page (after a plain form). */
export async function expectNotice (page: Page, text: string | RegExp): Promise<void> {
  await expect(page.locator('.toast, main .notice').filter({ hasText: text }).first()).toBeVisible()
}

/** The open confirmation dialog. */
export function dialog (page: Page): Locator {
  return page.getByRole('dialog')
}

/** The URL of a demo database host: "default" is the e2e server; "second" is read from its postmaster.pid (line 4: its port). */
export async function hostUrl (host: string | null): Promise<string> {
  if (host === null || host === 'default') return serverUrl()
  const pid = await readFile(join('..', E2E.dataDir, `postgres-${host}`, 'postmaster.pid'), 'utf8')
  return serverUrl().replace(/:[0-9]+\/postgres$/, `:${pid.split('\n')[3]?.trim() ?? ''}/postgres`)
}

/** The tenant's database: prefix + key without dashes, on its host (a new tenant goes to the emptier one). */
export async function tenantDb (key: string): Promise<string> {
  const [row] = await sql<{ host: string | null }>(centralDbUrl(), 'select database_host as host from tenancy.tenants where key = $1', [key])
  return (await hostUrl(row?.host ?? null)).replace(/\/postgres$/, `/demo_${key.replaceAll('-', '')}`)
}
