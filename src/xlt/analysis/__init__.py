"""Analyses of trained modules beyond the result tables: the overlap of SFT masks."""
