// Read by `npx fastify-tenancy ...` in this folder.
import { tenancyOptions } from './src/options.js'

export default tenancyOptions()
