"""kgreason.experiments."""
