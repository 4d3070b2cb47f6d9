"""Stage types, one module per family; registered by name in registry.py."""
