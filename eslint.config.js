// Lint: neostandard in TypeScript mode (STYLE.md point 12), run by `npm test`.
import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({
    ts: true,
    ignores: [
      // Build output (tsconfig.build.json) and what tools write beside the sources (.gitignore).
      'dist/',
      'coverage/',
      '.tmp/',
      '.data/',
      'test-results/',
      'playwright-report/',
      'e2e/artifacts/',
      '**/node_modules/'
    ]
  }),
  {
    // The admin's script runs in the browser, not in Node.
    files: ['public/**/*.js'],
    languageOptions: { sourceType: 'script', globals: globals.browser }
  },
  {
    rules: {
      // Every loop it flags polls a flag that another async task flips (`while (running)`); the rule cannot see those writes.
      'no-unmodified-loop-condition': 'off',
      '@stylistic/max-len': ['error', {
        code: 160,
        ignoreUrls: true,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true,
        ignoreComments: true
      }]
    }
  }
]
