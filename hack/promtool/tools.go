//go:build tools

// Package tools pins promtool's main package so `go mod tidy` records its graph.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
