"""The engine: rendered stacks become Pulumi stacks (Automation API, inline programs, the real
Kubernetes provider). `Engine` plans, updates, destroys and reports; `workspace` says where state
and the passphrase live; `program` turns objects into resources."""
