"""kgreason: teach small language models multi-hop reasoning over a knowledge graph."""

__version__ = "0.1.0"
