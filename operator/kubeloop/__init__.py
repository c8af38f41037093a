"""kubeloop: the continuous-training loop of a machine-learning model, run inside Kubernetes."""
