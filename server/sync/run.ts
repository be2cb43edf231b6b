/** Runs one statement (with `?` parameters) where the caller decided: a transaction, or a connection. */
export type { Run } from '../database/central-sql.js'
