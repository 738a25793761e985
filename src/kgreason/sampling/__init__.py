"""kgreason.sampling."""
