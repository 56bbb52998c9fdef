"""Models and versions in the registry."""
