"""Data registry, downloads and readers for the treebanks, NER and NLI sets and text corpora."""
