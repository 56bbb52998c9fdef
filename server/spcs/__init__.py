"""Snowpark Container Services: job services run from a user's specification (issue 10)."""
