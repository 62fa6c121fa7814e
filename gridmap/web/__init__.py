"""Browser pages and their static assets (vendored from npm; nothing from a CDN)."""
