"""gunicorn settings for the Procfile's web process (`gunicorn -c gunicorn.conf.py wsgi:app`)."""

# Access log to stdout, where the platform collects it. It names the path alone (%(U)s), never the
# request line (%(r)s) nor the query string (%(q)s): callback URLs carry their token in the query
# string, and logs are kept and shipped where a token must not be. The referer is left out too.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
