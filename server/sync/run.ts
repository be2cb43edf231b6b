/** Runs one statement (with `?` parameters) where the caller decided: a transaction, or a connection. */
export type Run = (sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>
