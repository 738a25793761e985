"""kgreason.evaluate."""
