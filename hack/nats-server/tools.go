//go:build tools

// Package tools pins nats-server's main package so `go mod tidy` records its graph.
package tools

import _ "github.com/nats-io/nats-server/v2"
