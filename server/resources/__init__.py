"""Databases, schemas and compute pools."""
