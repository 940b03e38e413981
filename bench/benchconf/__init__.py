"""Settings for the benchmark's gunicorn: production settings, static files kept in bench/."""
