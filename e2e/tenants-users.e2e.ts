import { test, expect } from '@playwright/test'
import { E2E, centralDbUrl } from './env.js'
import { expectAccessible, expectNotice, keepScreenshot, signIn, sql, tenantDb } from './helpers.js'

/** The tenant's database, on whichever host it was placed (the e2e demo has two). */
async function tenantDbUrl (identifier: string): Promise<string> {
  const rows = await sql<{ key: string }>(centralDbUrl(), 'select key from tenancy.tenants where identifier = $1', [identifier])
  return await tenantDb(String(rows[0]?.key))
}

test('an operator creates a tenant, sees it active, adds a domain and opens the tenant there', async ({ page }) => {
  await signIn(page)
  await page.getByRole('link', { name: 'Tenants' }).first().click()
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible()
  await expectAccessible(page)
  await keepScreenshot(page, 'tenants-list')
  await page.getByRole('button', { name: 'New tenant' }).click()
  await page.getByLabel('Identifier').fill('initech')
  await page.getByLabel('Name').fill('Initech')
  await page.getByRole('button', { name: 'Create tenant' }).click()
  await expect(page.locator('#tenant-status')).toHaveText('active')
  await expect(page.getByRole('status')).toContainText('Tenant initech created with its own database.')
  await expectAccessible(page)
  await keepScreenshot(page, 'tenant-page')

  await page.getByRole('navigation', { name: 'Tenant sections' }).getByRole('link', { name: /^Domains/ }).click()
  await page.getByLabel('Add a domain').fill('initech.localhost')
  await page.getByRole('button', { name: 'Add domain' }).click()
  await expectNotice(page, 'Domain initech.localhost added.')
  await expect(page.getByRole('region', { name: 'Domains of initech' })).toContainText('initech.localhost')
  // Chromium resolves *.localhost to this machine: the tenant's own page answers there.
  await page.goto(`http://initech.localhost:${E2E.port}/`)
  await expect(page.getByRole('heading', { name: 'Initech' })).toBeVisible()
  await expect(page.getByText('Tenant initech.')).toBeVisible()
})

test('an operator creates a user, attaches it to two tenants and renames it; both tenant databases have the new name', async ({ page }) => {
  await signIn(page)
  await page.getByRole('link', { name: 'Users' }).first().click()
  await expectAccessible(page)
  await page.getByRole('button', { name: 'New user' }).click()
  await page.getByLabel('Name').fill('Wile E. Coyote')
  await page.getByLabel('Email').fill('wile@example.test')
  await page.getByLabel('Password').fill('super genius')
  await page.getByRole('button', { name: 'Create user' }).click()
  await expect(page.getByRole('status')).toContainText('User Wile E. Coyote created')
  const find = page.getByLabel('Find tenants to attach to')
  await find.fill('acme')
  await page.getByRole('checkbox', { name: 'acme — Acme Corporation' }).check()
  await find.fill('globex')
  await page.getByRole('checkbox', { name: 'globex — Globex' }).check()
  await page.getByRole('button', { name: 'Attach', exact: true }).click()
  await expectNotice(page, 'Attached to acme, globex')
  await expect(page.getByRole('region', { name: 'Tenants of Wile E. Coyote' })).toContainText('globex')
  await expectAccessible(page)
  await keepScreenshot(page, 'user-page')

  await page.getByRole('button', { name: 'Edit' }).click()
  await page.getByLabel('Name').fill('Wile E. Coyote, Genius')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByRole('status')).toContainText('User saved')
  for (const identifier of ['acme', 'globex']) {
    const rows = await sql<{ name: string }>(await tenantDbUrl(identifier), 'select name from users where email = $1', ['wile@example.test'])
    expect(rows.map((r) => r.name)).toEqual(['Wile E. Coyote, Genius'])
  }
  await page.getByRole('link', { name: 'Admins' }).first().click()
  await expectAccessible(page)
  await keepScreenshot(page, 'admins-list')
})
