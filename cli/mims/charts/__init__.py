"""Charts: per-component metadata plus Jinja2 templates of Kubernetes objects."""
