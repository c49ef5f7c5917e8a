//go:build tools

// Package tools pins the Kubernetes commands that tools/build.sh builds, so
// that go mod tidy keeps everything they need in go.mod and go.sum. The build
// tag keeps it out of every real build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
