// The `sync` option is part of the plugin's options schema (server/options/schema.ts), which checks it and gives its type.
export type { SyncOptions } from '../options/schema.js'
