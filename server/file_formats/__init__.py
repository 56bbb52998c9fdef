"""Named file formats (CREATE FILE FORMAT) and the options that say how stage files are read and written."""
