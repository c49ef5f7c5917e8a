//go:build tools

// Package tools pins etcd's server, whose root package is etcd's main (it
// calls etcdmain.Main); tools/build.sh builds it. The build tag keeps this
// file out of every real build; go mod tidy still reads it.
package tools

import _ "go.etcd.io/etcd/server/v3"
