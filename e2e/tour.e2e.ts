import { test, expect, type Page } from '@playwright/test'
import { dialog, expectAccessible, expectNotice, keepScreenshot, makeAdmin, signIn, sql } from './helpers.js'
import { E2E, centralDbUrl } from './env.js'

/**
 * Every admin page at 1280 px and 390 px, light and dark: axe finds
 * nothing, the page never scrolls sideways (tables scroll in their own box),
 * and a screenshot of each is kept in e2e/artifacts/screenshots.
 */
const MODES = [
  { name: 'desktop-light', width: 1280, height: 900, colorScheme: 'light' as const },
  { name: 'desktop-dark', width: 1280, height: 900, colorScheme: 'dark' as const },
  { name: 'phone-light', width: 390, height: 844, colorScheme: 'light' as const },
  { name: 'phone-dark', width: 390, height: 844, colorScheme: 'dark' as const }
]

async function ids (): Promise<{ acme: string, globex: string, cluster: string, user: string, admin: string, other: string, domain: string }> {
  const one = async (q: string, p: unknown[] = []): Promise<string> => String((await sql(centralDbUrl(), q, p))[0]?.id)
  return {
    acme: await one("select key as id from tenancy.tenants where identifier = 'acme'"),
    globex: await one("select key as id from tenancy.tenants where identifier = 'globex'"),
    cluster: await one("select id from tenancy.tenant_clusters where name = 'Tour Region'"),
    user: await one("select global_id as id from tenancy.users where email = 'ada@example.test'"),
    admin: await one('select id from tenancy.admins order by created_at limit 1'),
    other: await one('select id from tenancy.admins where email <> $1 order by created_at limit 1', [E2E.adminEmail]),
    domain: await one("select d.id from tenancy.domains d join tenancy.tenants t on t.key = d.tenant_key where t.identifier = 'acme' order by d.id limit 1")
  }
}

async function pages (): Promise<Array<[string, string]>> {
  const i = await ids()
  return [
    ['dashboard', '/admin'],
    ['tenants', '/admin/tenants'],
    ['tenant-new', '/admin/tenants/new'],
    ['tenant', `/admin/tenants/${i.acme}`],
    ['tenant-domains', `/admin/tenants/${i.acme}?tab=domains`],
    ['tenant-users', `/admin/tenants/${i.acme}?tab=users`],
    ['tenant-domain-remove-confirm', `/admin/tenants/${i.acme}/domains/${i.domain}/delete`],
    ['tenant-status-confirm', `/admin/tenants/${i.acme}/status`],
    ['tenant-edit', `/admin/tenants/${i.acme}/edit`],
    ['tenant-delete', `/admin/tenants/${i.acme}/delete`],
    ['clusters', '/admin/clusters'],
    ['cluster-new', '/admin/clusters/new'],
    ['cluster', `/admin/clusters/${i.cluster}`],
    ['cluster-details', `/admin/clusters/${i.cluster}?tab=details`],
    ['cluster-edit', `/admin/clusters/${i.cluster}/edit`],
    ['cluster-delete', `/admin/clusters/${i.cluster}/delete`],
    ['cluster-parent-confirm', `/admin/clusters/${i.cluster}/parent/${i.globex}`],
    ['cluster-detach-confirm', `/admin/clusters/${i.cluster}/detach/${i.globex}`],
    ['cluster-find', `/admin/clusters/${i.cluster}?find=a`],
    ['users', '/admin/users'],
    ['user-new', '/admin/users/new'],
    ['user', `/admin/users/${i.user}`],
    ['user-edit', `/admin/users/${i.user}/edit`],
    ['user-delete', `/admin/users/${i.user}/delete`],
    ['user-detach-confirm', `/admin/users/${i.user}/detach/${i.acme}`],
    ['admins', '/admin/admins'],
    ['admin-new', '/admin/admins/new'],
    ['admin-edit', `/admin/admins/${i.admin}/edit`],
    ['admin-reset-confirm', `/admin/admins/${i.other}/password`],
    ['account', '/admin/account'],
    ['fleet', '/admin/fleet'],
    ['roles', '/admin/admins/roles'],
    ['audit', '/admin/audit'],
    ['not-found', '/admin/nothing-here']
  ]
}

async function noSidewaysScroll (page: Page, label: string): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  expect(overflow, `${label} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0)
}

// Flows of many steps with axe runs: minutes each on a loaded machine.
test.describe.configure({ mode: 'serial', timeout: 900_000 })

test('setup for the tour: a cluster with two tenants and a user in acme', async ({ page }) => {
  await signIn(page)
  if ((await sql(centralDbUrl(), "select 1 from tenancy.tenant_clusters where name = 'Tour Region'")).length === 0) {
    await page.goto('/admin/clusters/new')
    await page.getByLabel('Name').fill('Tour Region')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByLabel('Find tenants to attach').fill('acme')
    await page.getByRole('checkbox', { name: /^acme — / }).check()
    await page.getByLabel('Find tenants to attach').fill('globex')
    await page.getByRole('checkbox', { name: /^globex — / }).check()
    await page.getByRole('button', { name: 'Attach', exact: true }).click()
    await expectNotice(page, 'Attached')
  }
  if ((await sql(centralDbUrl(), 'select 1 from tenancy.admins where email <> $1', [E2E.adminEmail])).length === 0) await makeAdmin(['manage_tenants'])
  if ((await sql(centralDbUrl(), "select 1 from tenancy.users where email = 'ada@example.test'")).length === 0) {
    await page.goto('/admin/users/new')
    await page.getByLabel('Name').fill('Ada Lovelace')
    await page.getByLabel('Email').fill('ada@example.test')
    await page.getByLabel('Password').fill('analytical engine')
    await page.getByRole('button', { name: 'Create user' }).click()
    await page.getByLabel('Find tenants to attach to').fill('acme')
    await page.getByRole('checkbox', { name: 'acme — Acme Corporation' }).check()
    await page.getByRole('button', { name: 'Attach', exact: true }).click()
    await expectNotice(page, 'Attached to acme')
  }
})

for (const mode of MODES) {
  test.describe(mode.name, () => {
    test.use({ viewport: { width: mode.width, height: mode.height }, colorScheme: mode.colorScheme })

    test(`every admin page passes axe, fits ${mode.width} px and is kept as a screenshot (${mode.name})`, async ({ page }) => {
      test.setTimeout(600_000)
      await page.goto('/admin/login')
      await expectAccessible(page)
      await noSidewaysScroll(page, 'login')
      await keepScreenshot(page, `${mode.name}/login`)
      await signIn(page)
      for (const [name, url] of await pages()) {
        const response = await page.goto(url)
        expect(response?.status(), url).toBeLessThan(name === 'not-found' ? 500 : 400)
        await expectAccessible(page)
        await noSidewaysScroll(page, name)
        await keepScreenshot(page, `${mode.name}/${name}`)
      }
      // The same confirmations as dialogs over their pages, and a toast.
      const i = await ids()
      await page.goto(`/admin/clusters/${i.cluster}`)
      await page.getByRole('switch', { name: /Parent Tenant: / }).and(page.locator('[aria-checked="false"]')).first().click()
      await expect(dialog(page)).toBeVisible()
      await expectAccessible(page)
      await noSidewaysScroll(page, 'parent-dialog')
      await keepScreenshot(page, `${mode.name}/parent-dialog`)
      await page.keyboard.press('Escape')
      await expect(dialog(page)).toBeHidden()
      await page.goto(`/admin/tenants/${i.acme}`)
      await page.getByRole('button', { name: 'Delete' }).click()
      await expect(dialog(page).getByLabel(/Type acme to confirm/)).toBeFocused()
      await expectAccessible(page)
      await keepScreenshot(page, `${mode.name}/delete-dialog`)
      await dialog(page).getByRole('button', { name: 'Delete tenant' }).click()
      await expect(dialog(page).getByText('Type acme to confirm.')).toBeVisible()
      await expectAccessible(page)
      await page.keyboard.press('Escape')
      await page.goto(`/admin/tenants/${i.acme}`)
      await page.getByRole('button', { name: 'Check now' }).click()
      await expectNotice(page, 'acme is up to date')
      await expectAccessible(page)
      await keepScreenshot(page, `${mode.name}/toast`)
    })

    test(`the Parent Tenant switch shows on and off apart, by colour and aria-checked (${mode.name})`, async ({ page }) => {
      const i = await ids()
      await signIn(page)
      await page.goto(`/admin/clusters/${i.cluster}`)
      const on = page.locator('.switch[aria-checked="true"]').first()
      const off = page.locator('.switch[aria-checked="false"]').first()
      await expect(on).toBeVisible()
      await expect(off).toBeVisible()
      const colour = async (l: typeof on): Promise<string> => await l.evaluate((el) => getComputedStyle(el).backgroundColor)
      expect(await colour(on)).not.toEqual(await colour(off))
      expect(await on.getAttribute('aria-checked')).toBe('true')
      expect(await off.getAttribute('aria-checked')).toBe('false')
      await keepScreenshot(page, `${mode.name}/parent-switch`)
    })
  })
}

test('at 390 px the navigation collapses behind Menu, Sign out stays on screen, and Detach is not cut off', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 })
  const i = await ids()
  await signIn(page)
  // Sign out is on screen as the page opens, without scrolling sideways.
  await expect(page.getByRole('button', { name: /Sign out/ })).toBeInViewport({ ratio: 1 })
  const nav = page.getByRole('navigation', { name: 'Main' })
  await expect(nav).toBeHidden()
  await page.getByRole('link', { name: 'Menu' }).click()
  await expect(nav).toBeVisible()
  await expect(nav.getByRole('link', { name: 'Tenant Clusters' })).toBeInViewport()
  await keepScreenshot(page, 'phone-menu-open')
  await page.goto(`/admin/users/${i.user}`)
  const detach = page.getByRole('button', { name: 'Detach acme' })
  await detach.scrollIntoViewIfNeeded()
  await expect(detach).toBeInViewport({ ratio: 1 })
})

test('the theme switch remembers the operator\'s choice over the system\'s', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' })
  await signIn(page)
  await expect(page.locator('html')).not.toHaveAttribute('data-theme', /.*/)
  await page.getByRole('button', { name: 'Dark', exact: true }).click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  await page.goto('/admin/tenants')
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)
  await page.getByRole('button', { name: 'Auto', exact: true }).click()
  await expect(page.locator('html')).not.toHaveAttribute('data-theme', /.*/)
  expect(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)).not.toEqual(background)
})
