/**
 * fastify-tenancy/testing: helpers for an app's own tests, with any runner
 * (node:test, Vitest, Jest): they return promises and throw plain errors.
 */
export { createTestTenant, withTenant, type TestTenant, type TestTenantOptions } from './test-tenants.js'
export { checkIsolation, TenancyIsolationError, type IsolationOptions, type IsolationReport, type IsolationLeak, type SeedContext } from './isolation-check.js'
