import { test, expect, type Page } from '@playwright/test'
import { E2E } from './env.js'
import { expectAccessible, expectNotice, keepScreenshot, signIn } from './helpers.js'

const tenantUrl = (identifier: string, path = '/'): string => `http://${identifier}.localhost:${E2E.port}${path}`

/** Creates a tenant through the admin and stays on its page. */
async function createTenant (page: Page, identifier: string, name: string): Promise<void> {
  await page.goto('/admin/tenants')
  await page.getByRole('button', { name: 'New tenant' }).click()
  await page.getByLabel('Identifier').fill(identifier)
  await page.getByLabel('Name').fill(name)
  await page.getByRole('button', { name: 'Create tenant' }).click()
  await expect(page.locator('#tenant-status')).toHaveText('active')
}

test.describe.configure({ mode: 'serial' })

test('an operator renames a tenant; its old subdomain redirects with path and query, and the page lists the former name', async ({ page }) => {
  await signIn(page)
  await createTenant(page, 'hooli', 'Hooli')
  await page.getByRole('button', { name: 'Edit' }).click()
  await page.getByLabel('Identifier').fill('piedpiper')
  await page.getByLabel('Name').fill('Pied Piper')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.locator('#former-names')).toContainText('hooli')
  await expect(page.locator('#former-names')).toContainText(/identifier\s*\d{4}-\d\d-\d\d \d\d:\d\d UTC/)
  await expectAccessible(page)
  await keepScreenshot(page, 'tenant-former-names')

  const response = await page.goto(tenantUrl('hooli', '/projects.json?sort=title&page=2'))
  expect(page.url()).toBe(tenantUrl('piedpiper', '/projects.json?sort=title&page=2'))
  expect(response?.request().redirectedFrom()?.url()).toBe(tenantUrl('hooli', '/projects.json?sort=title&page=2'))
  expect((await response?.request().redirectedFrom()?.response())?.status()).toBe(301)
  expect(await response?.json()).toMatchObject({ tenant: 'piedpiper' })
})

test('an operator switches maintenance on and off; visitors get the maintenance page, the bypass link lets the operator in', async ({ page, browser }) => {
  await signIn(page)
  await page.goto('/admin/tenants?q=piedpiper')
  await page.getByRole('link', { name: 'piedpiper' }).first().click()
  await page.getByLabel('Message').fill('Back after the database upgrade.')
  await page.getByLabel('For minutes (empty: until ended)').fill('30')
  await page.getByRole('button', { name: 'Start maintenance' }).click()
  await expect(page.locator('#maintenance-state')).toContainText('In maintenance until')
  const notice = await page.getByRole('status').first().textContent() ?? ''
  const bypass = /bypass link \(shown once\): (\S+)/.exec(notice)?.[1]
  expect(bypass).toMatch(/tenancy-bypass=/)
  await expectAccessible(page)
  await keepScreenshot(page, 'tenant-maintenance-on')

  const visitor = await browser.newContext()
  const visitorPage = await visitor.newPage()
  const down = await visitorPage.goto(tenantUrl('piedpiper'))
  expect(down?.status()).toBe(503)
  expect(down?.headers()['retry-after']).toMatch(/^\d+$/)
  await expect(visitorPage.getByRole('heading', { name: 'Down for maintenance' })).toBeVisible()
  await expect(visitorPage.getByText('Back after the database upgrade.')).toBeVisible()

  const operator = await browser.newContext()
  const operatorPage = await operator.newPage()
  await operatorPage.goto(String(bypass))
  await expect(operatorPage.getByRole('heading', { name: 'Pied Piper' })).toBeVisible()
  expect(operatorPage.url()).toBe(tenantUrl('piedpiper'))

  await page.getByRole('button', { name: 'End maintenance' }).click()
  await expect(page.getByRole('status').first()).toContainText('serves again')
  await visitorPage.goto(tenantUrl('piedpiper'))
  await expect(visitorPage.getByRole('heading', { name: 'Pied Piper' })).toBeVisible()
  await visitor.close()
  await operator.close()
})

test('an operator opens the tenant app as one of its users, sees the app as them, and ends it; the link does not work twice', async ({ page }) => {
  await signIn(page)
  await page.getByRole('link', { name: 'Users' }).first().click()
  await page.getByRole('button', { name: 'New user' }).click()
  await page.getByLabel('Name').fill('Richard Hendricks')
  await page.getByLabel('Email').fill('richard@example.test')
  await page.getByLabel('Password').fill('middle out compression')
  await page.getByRole('button', { name: 'Create user' }).click()
  await page.getByLabel('Find tenants to attach to').fill('piedpiper')
  await page.getByRole('checkbox', { name: 'piedpiper — Pied Piper' }).check()
  await page.getByRole('button', { name: 'Attach', exact: true }).click()
  await expectNotice(page, 'Attached to piedpiper')

  await page.goto('/admin/tenants?q=piedpiper')
  await page.getByRole('link', { name: 'piedpiper' }).first().click()
  await page.getByRole('navigation', { name: 'Tenant sections' }).getByRole('link', { name: /^Users/ }).click()
  const landing: string[] = []
  page.on('request', (request) => { if (request.url().includes('/_tenancy/impersonate?token=')) landing.push(request.url()) })
  await page.getByRole('button', { name: 'Open as Richard Hendricks' }).click()
  await expectAccessible(page)
  await page.getByRole('button', { name: 'Open Pied Piper as Richard Hendricks' }).click()
  await expect(page.locator('#impersonation')).toContainText(`Signed in as Richard Hendricks (opened by ${E2E.adminEmail})`)
  expect(page.url()).toBe(tenantUrl('piedpiper'))
  await keepScreenshot(page, 'tenant-impersonated')

  await page.getByRole('button', { name: 'End impersonation' }).click()
  await expect(page.getByRole('heading', { name: 'Pied Piper' })).toBeVisible()
  await expect(page.locator('#impersonation')).toHaveCount(0)

  expect(landing).toHaveLength(1)
  const again = await page.goto(String(landing[0]))
  expect(again?.status()).toBe(403)
  expect(await again?.text()).toContain('FST_TENANCY_IMPERSONATION_REFUSED')
})
