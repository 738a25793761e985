"""kgreason.models."""
