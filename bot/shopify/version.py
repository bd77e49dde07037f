"""The Shopify Admin API version orderbot asks for: the version of the schema the repo holds
(bot/sandbox/admin-<version>.graphql), which every GraphQL document is validated against and the sandbox executes.

To move to a newer version, replace that schema file with the new version's and set API_VERSION to match; the tests
say when the two differ and which documents the new schema refuses.
"""

API_VERSION = "2026-04"
