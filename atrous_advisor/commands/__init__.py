"""One module per CLI command, each with ``register(app)``. Keep torch imports inside the functions."""
