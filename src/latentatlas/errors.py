"""The one exception type for user mistakes (bad paths, options, data)."""


class LatentAtlasError(Exception):
    """A problem the user can fix. The CLI prints its message on one line and exits with status 2."""
