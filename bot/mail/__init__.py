"""Email to customers, the one outbound adapter besides Shopify, Slack and the database."""
