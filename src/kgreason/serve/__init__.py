"""kgreason.serve."""
