"""HTTP routes, one module per resource: health, search, documents."""
