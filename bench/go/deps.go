//go:build tools

package bench

import (
	_ "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	_ "github.com/fsnotify/fsnotify"
)
