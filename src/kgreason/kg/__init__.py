"""kgreason.kg."""
