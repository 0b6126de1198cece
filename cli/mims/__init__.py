"""mims: a city's blueprint in, a MIMs data platform on Kubernetes out."""

__version__ = "0.2.0.dev0"
