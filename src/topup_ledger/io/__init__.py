"""Files in and out: CSV imports, pyarrow writers, statements."""
