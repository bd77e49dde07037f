"""The flows: what orderbot does with a delivery, a click, a command, a bulk run, a digest and its history. Each
takes its I/O from the adapters (bot/shopify, bot/slack, bot/store, bot/mail) and its decisions from bot/domain."""
