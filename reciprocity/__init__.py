"""Reciprocity: make the give-and-take inside an organisation visible."""
