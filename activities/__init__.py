"""Activities: every side effect Gennaker has. Workflows call them; workers/ host them."""
