"""WSGI entry point of the provider simulators alone: the Procfile's `sandbox` process, so the
web process's requests that wait on "Daraja" never wait on the web process's own threads."""

from portal import create_app

app = create_app(part="sandbox")
