"""Outbound HTTP clients for the providers; base URLs come from config."""
