"""The local development cluster: upstream Kubernetes built from Go modules, with one real node (containerd,
runc, kubelet, kube-proxy, CoreDNS) that runs the project's own images."""
