// The sandbox ("pause") process of the local node's pods: it holds a pod's namespaces and reaps zombies.
module kubeloop.dev/cluster/tools/pause

go 1.24.0
