"""Inbound provider routes: store raw, then hand to a service; answer what the provider expects."""
