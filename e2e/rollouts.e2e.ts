import { test, expect, type Page } from '@playwright/test'
import { centralDbUrl } from './env.js'
import { dialog, expectAccessible, expectNotice, keepScreenshot, signIn, sql, tenantDb } from './helpers.js'

/**
 * Issue 21's Fleet page and issue 23's pages for it, in Chromium: a
 * rollout started with a canary wave from the Fleet page waits after it,
 * is halted, resumed and done, every step behind the same dialogs as other
 * actions. axe finds nothing on the form, the rollout page and the Fleet
 * page, at 1280 and 390 px, light and dark.
 */
const MODES = [
  { name: 'desktop-light', width: 1280, height: 900, colorScheme: 'light' as const },
  { name: 'desktop-dark', width: 1280, height: 900, colorScheme: 'dark' as const },
  { name: 'phone-light', width: 390, height: 844, colorScheme: 'light' as const },
  { name: 'phone-dark', width: 390, height: 844, colorScheme: 'dark' as const }
]
const RUN = Date.now().toString(36).slice(-5)
/** The demo's last tenant migration: undone in a tenant, it is what the rollout brings back. */
const LAST = 'Migration20261125020003_companies_tenant'

/** Creates a tenant through the admin; returns its key. */
async function createTenant (page: Page, identifier: string): Promise<string> {
  await page.goto('/admin/tenants/new')
  await page.getByLabel('Identifier').fill(identifier)
  await page.getByLabel('Name').fill(`Rollout ${identifier}`)
  await page.getByRole('button', { name: 'Create tenant' }).click()
  await expect(page.locator('#tenant-status')).toHaveText('active')
  return page.url().split('/').pop() as string
}

/** Undoes the demo's last tenant migration in a tenant, and in the central record of what it ran: the tenant is behind, as after a deploy. */
async function putBehind (key: string): Promise<void> {
  await sql(await tenantDb(key), 'drop table companies')
  await sql(await tenantDb(key), 'delete from fastify_tenancy_migrations where name = $1', [LAST])
  await sql(centralDbUrl(), 'update tenancy.tenant_migration_states set executed = array_remove(executed, $1) where tenant_key = $2', [LAST, key])
}

async function ranLast (key: string): Promise<number> {
  return Number((await sql<{ n: number }>(await tenantDb(key), 'select count(*)::int as n from fastify_tenancy_migrations where name = $1', [LAST]))[0]?.n)
}

test.describe.configure({ mode: 'serial', timeout: 300_000 })

for (const mode of MODES) {
  test.describe(mode.name, () => {
    test.use({ viewport: { width: mode.width, height: mode.height }, colorScheme: mode.colorScheme })
    const tag = `${RUN}${mode.name.replace(/[^a-z]/g, '').slice(0, 3)}${mode.name.endsWith('dark') ? 'd' : 'l'}`
    const shot = async (page: Page, step: string): Promise<void> => { await keepScreenshot(page, `rollouts/${mode.name}/${step}`) }

    test(`an operator starts a rollout with a canary on the Fleet page, sees it wait, halts, resumes it and sees it done (${mode.name})`, async ({ page }) => {
      await signIn(page)
      const canary = `ro-${tag}-a`
      const keys = [await createTenant(page, canary), await createTenant(page, `ro-${tag}-b`)]
      for (const key of keys) await putBehind(key)

      await page.goto('/admin/fleet')
      await expect(page.getByRole('heading', { name: 'Rollouts' })).toBeVisible()
      await page.getByRole('button', { name: 'Start a rollout' }).click()
      await expect(dialog(page).getByRole('heading', { name: 'Start a rollout?' })).toBeVisible()
      // Bad input: the ledger's sentence on the form, in the dialog.
      await dialog(page).getByLabel(/Tenants at once/).fill('lots')
      await dialog(page).getByRole('button', { name: 'Start rollout' }).click()
      await expect(dialog(page).locator('#rollout-error')).toContainText('concurrency (--concurrency) must be a whole number of at least 1, not "lots"')
      await expectAccessible(page)
      await shot(page, 'start-refused')
      await dialog(page).getByLabel(/Tenants at once/).fill('2')
      await dialog(page).getByLabel(/Canary wave/).fill(canary)
      await dialog(page).getByRole('button', { name: 'Start rollout' }).click()

      // The canary wave runs, then the rollout waits for a go.
      await expect(page).toHaveURL(/\/admin\/fleet\/rollouts\/\d+$/)
      const url = page.url()
      const id = url.split('/').pop() as string
      await expectNotice(page, `Rollout ${id} started`)
      await expect(page.locator('#rollout-status')).toHaveText('waiting for a go', { timeout: 60_000 })
      await expect(page.getByRole('row', { name: /canary/ })).toContainText('1')
      expect(await ranLast(keys[0] as string)).toBe(1)
      expect(await ranLast(keys[1] as string)).toBe(0)
      await expectAccessible(page)
      await shot(page, 'waiting')

      // Halted while it waits, behind a dialog.
      await page.getByRole('button', { name: 'Halt' }).click()
      await expect(dialog(page).getByRole('heading', { name: `Halt rollout ${id}?` })).toBeVisible()
      await expectAccessible(page)
      await dialog(page).getByRole('button', { name: `Halt rollout ${id}` }).click()
      await expectNotice(page, `Rollout ${id} halted`)
      await expect(page.locator('#rollout-status')).toHaveText('halted')
      await expect(page.getByRole('button', { name: 'Halt' })).toHaveCount(0)
      await expectAccessible(page)
      await shot(page, 'halted')

      // Resumed: the rest runs, the page follows it to the end.
      await page.getByRole('button', { name: 'Resume' }).click()
      await expect(dialog(page).getByRole('heading', { name: `Resume rollout ${id}?` })).toBeVisible()
      await dialog(page).getByRole('button', { name: `Resume rollout ${id}` }).click()
      await expectNotice(page, `Rollout ${id} resumed`)
      await expect(page.locator('#rollout-status')).toHaveText(/^(done|finished with failures)$/, { timeout: 120_000 })
      await expect(page.getByRole('button', { name: 'Resume' })).toHaveCount(0)
      expect(await ranLast(keys[1] as string)).toBe(1)
      expect(await ranLast(keys[0] as string)).toBe(1)
      // Neither of this flow's tenants failed (another spec's leftovers may have).
      for (const key of keys) await expect(page.locator(`#rollout-failed a[href$="${key}"]`)).toHaveCount(0)
      await expectAccessible(page)
      await shot(page, 'done')

      // The Fleet page lists it with its waves; the audit log has start, halt and resume.
      await page.goto('/admin/fleet')
      await expect(page.getByRole('link', { name: `migrate #${id}` })).toBeVisible()
      await expectAccessible(page)
      await shot(page, 'fleet')
      const actions = (await sql<{ action: string }>(centralDbUrl(), "select action from tenancy.admin_audit_log where action like 'fleet.rollout.%' and change->>'rollout' = $1 order by id", [id])).map((r) => r.action)
      expect(actions).toEqual(['fleet.rollout.start', 'fleet.rollout.halt', 'fleet.rollout.resume'])
    })
  })
}
