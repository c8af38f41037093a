"""The local development cluster: upstream Kubernetes built from Go modules, plus a node agent."""
