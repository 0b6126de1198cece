"""MIM5: the city's algorithm register (Eurocities Algorithmic Transparency Standard v0.3.1)."""
