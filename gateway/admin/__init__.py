"""The admin listener: health, readiness, and (as it grows) the admin API, console and metrics."""
