"""MIM7 Places: the city's geospatial data, served as OGC API Features."""
