"""Domain services: they decide. No flask.request, no JSON shapes, no templates."""
