"""kgreason.reward."""
