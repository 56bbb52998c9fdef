"""Metadata storage: typed tables and the engine factory."""
