"""Test rigs shared by several test modules (Docker engine and registry, fake services)."""
