"""Named stages and their files."""
