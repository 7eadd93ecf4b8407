"""JSON APIs: one blueprint per documented API (a dialect: its parsing, shapes and errors)."""
