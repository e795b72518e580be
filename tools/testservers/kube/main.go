// Command kube-apiserver is the upstream kube-apiserver, built from the published Go modules
// so that tests can run a real API server without downloading release binaries
// (tools/testservers/build.sh builds and caches it).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
