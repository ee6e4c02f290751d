"""Command-line entry points: `xlt-train`, `xlt-evaluate` and the tokenised-text dump."""
