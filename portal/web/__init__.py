"""Portal pages and htmx partials, one module per area."""
