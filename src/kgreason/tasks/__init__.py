"""kgreason.tasks."""
