import { test, expect } from '@playwright/test'
import { signIn, expectAccessible, keepScreenshot, makeAdmin } from './helpers.js'

test('an admin signs in, sees the dashboard and signs out', async ({ page }) => {
  await page.goto('/admin')
  await expect(page).toHaveURL(/\/admin\/login\?next=/)
  await expectAccessible(page)
  await keepScreenshot(page, 'login')
  await signIn(page)
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
  await expectAccessible(page)
  await keepScreenshot(page, 'dashboard')
  await page.getByRole('button', { name: /Sign out/ }).click()
  await expect(page).toHaveURL(/\/admin\/login$/)
  await page.goto('/admin')
  await expect(page).toHaveURL(/\/admin\/login/)
})

test('a wrong password shows a message next to the form, not a stack trace', async ({ page }) => {
  await page.goto('/admin/login')
  await page.getByLabel('Email').fill('nobody@example.test')
  await page.getByLabel('Password').fill('wrong')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('alert')).toContainText('The email or password is wrong.')
  await expect(page.getByLabel('Email')).toHaveValue('nobody@example.test')
})

test('a form posted without its CSRF token is refused with 403', async ({ page }) => {
  await signIn(page)
  const response = await page.request.post('/admin/logout', { form: { nothing: '1' } })
  expect(response.status()).toBe(403)
  // Still signed in.
  await page.goto('/admin')
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
})

test('an admin without manage_users sees no Users link and gets 403 on its URL', async ({ page }) => {
  const limited = await makeAdmin(['manage_tenants'])
  await signIn(page, limited.email, limited.password)
  await expect(page.getByRole('link', { name: 'Tenant Clusters' })).toHaveCount(0)
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0)
  const response = await page.goto('/admin/users')
  expect(response?.status()).toBe(403)
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible()
})
