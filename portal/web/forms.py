"""Small pieces shared by the portal's forms."""


def strip(value):
    """A form filter: pasted values often carry stray spaces."""
    return value.strip() if isinstance(value, str) else value
