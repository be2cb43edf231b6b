import { test, expect } from '@playwright/test'
import { signIn, expectAccessible, expectNotice, keepScreenshot, makeAdmin, dialog } from './helpers.js'

test('an operator groups tenants in a cluster and the Parent Tenant rule holds', async ({ page }) => {
  await signIn(page)
  await page.getByRole('link', { name: 'Tenant Clusters' }).first().click()
  await expect(page.getByRole('heading', { name: 'Tenant Clusters' })).toBeVisible()
  await page.getByRole('button', { name: 'New Tenant Cluster' }).click()
  await page.getByLabel('Name').fill('Demo Region')
  await page.getByLabel(/Description/).fill('The demo tenants')
  await page.getByRole('button', { name: 'Save' }).click()
  await expectNotice(page, 'with the slug "demo-region"')

  // Attach Existing, found by search (the list of candidates is the server's); the first becomes the Parent Tenant.
  const find = page.getByLabel('Find tenants to attach')
  await find.fill('acme')
  await page.getByRole('checkbox', { name: /^acme — Acme Corporation/ }).check()
  await find.fill('globex')
  await page.getByRole('checkbox', { name: /^globex — Globex/ }).check()
  await expect(page.getByRole('checkbox', { name: /^acme — Acme Corporation/ })).toBeChecked()
  await page.getByRole('button', { name: 'Attach', exact: true }).click()
  await expectNotice(page, 'acme is its Parent Tenant')
  await expect(page.getByRole('switch', { name: 'Parent Tenant: acme' })).toHaveAttribute('aria-checked', 'true')
  await expect(page.getByRole('switch', { name: 'Parent Tenant: globex' })).toHaveAttribute('aria-checked', 'false')
  await expectAccessible(page)
  await keepScreenshot(page, 'cluster-page')

  // Switch the parent with the toggle, after a confirmation (a dialog) that names the change.
  await page.getByRole('switch', { name: 'Parent Tenant: globex' }).click()
  await expect(dialog(page).getByRole('heading', { name: 'Make globex the Parent Tenant of "Demo Region"?' })).toBeVisible()
  await expect(dialog(page).getByText('instead of acme')).toBeVisible()
  await expectAccessible(page)
  await dialog(page).getByRole('button', { name: 'Make globex the Parent Tenant' }).click()
  await expectNotice(page, 'globex is now the Parent Tenant')
  await expect(page.getByRole('switch', { name: 'Parent Tenant: globex' })).toHaveAttribute('aria-checked', 'true')

  // The parent cannot be detached while acme remains.
  await page.getByRole('button', { name: 'Detach globex' }).click()
  await dialog(page).getByRole('button', { name: 'Detach globex' }).click()
  await expectNotice(page, '"globex" is the Parent Tenant of "Demo Region" and other tenants remain')
  await page.getByRole('button', { name: 'Detach acme' }).click()
  await expect(dialog(page).getByText('acme will belong to no Tenant Cluster')).toBeVisible()
  await dialog(page).getByRole('button', { name: 'Detach acme' }).click()
  await expectNotice(page, 'Detached acme')

  // The tenant list filtered by the cluster shows its tenants only.
  const clusterUrl = page.url().replace(/\?.*$/, '')
  const clusterId = clusterUrl.split('/').pop() as string
  await page.goto(`/admin/tenants?cluster=${clusterId}`)
  await expect(page.getByRole('link', { name: 'globex', exact: true })).toBeVisible()
  await expect(page.getByRole('link', { name: 'acme', exact: true })).toHaveCount(0)

  await page.goto('/admin/clusters')
  await expect(page.getByRole('row', { name: /Demo Region/ })).toContainText('globex')
  await expectAccessible(page)
  await keepScreenshot(page, 'cluster-list')
})

test('an admin without manage_tenant_groups sees no Tenant Clusters and gets 403 on its URL', async ({ page }) => {
  const limited = await makeAdmin(['manage_tenants'])
  await signIn(page, limited.email, limited.password)
  await expect(page.getByRole('link', { name: 'Tenant Clusters' })).toHaveCount(0)
  const response = await page.goto('/admin/clusters')
  expect(response?.status()).toBe(403)
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible()
})
