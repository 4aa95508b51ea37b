"""The operator command line (`reciprocity ...`)."""
