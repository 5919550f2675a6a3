//go:build tools

// Package tools pins the main packages built by hack/build-k8s-bins.sh so that
// `go mod tidy` keeps their whole dependency graph in go.mod and go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
