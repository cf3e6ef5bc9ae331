"""Platform migrations: an ownership catalog, targeted notices, step dependencies, nudges, progress."""
