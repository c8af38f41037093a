// Command pause sleeps until SIGINT or SIGTERM, reaping children, as the sandbox process of a pod.
// It is the only Go source of the project: a static binary that the local node packs as its sandbox image,
// because no registry with registry.k8s.io/pause is reachable here.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			// PID 1 of the pod's PID namespace (when shared) inherits orphans: reap them.
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
