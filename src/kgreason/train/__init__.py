"""kgreason.train."""
