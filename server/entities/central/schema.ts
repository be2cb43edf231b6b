/** The PostgreSQL schema of the central (landlord) tables when `database.schema` is not given. */
export const DEFAULT_CENTRAL_SCHEMA = 'tenancy'
