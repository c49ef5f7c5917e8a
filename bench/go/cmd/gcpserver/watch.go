package main

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// catalog holds each host file's last good content, keyed by base name.
type catalog struct {
	dir   string
	files map[string]fileModel
}

func isHostFile(name string) bool {
	return strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".")
}

// listDir returns the *.json regular files directly in dir.
func listDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if isHostFile(e.Name()) && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// reload re-reads one file. A file that is gone is dropped; a file that
// does not parse is logged and keeps its last good content. It reports
// whether the catalog may have changed.
func (c *catalog) reload(name string) (bool, error) {
	path := filepath.Join(c.dir, name)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.Mode().IsRegular()) {
		_, had := c.files[name]
		delete(c.files, name)
		return had, nil
	}
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, had := c.files[name]
		delete(c.files, name)
		return had, nil
	}
	if err != nil {
		return false, err
	}
	m, err := parseHostFile(data)
	if err != nil {
		return false, err
	}
	c.files[name] = m
	return true, nil
}

// watchLoop collects fsnotify events for *.json names in the directory.
// After the first event it waits until there has been no event for
// debounce, but never longer than maxDelay after that first event, then
// hands the set of changed names to apply.
func watchLoop(ctx context.Context, w *fsnotify.Watcher, c *catalog, debounce, maxDelay time.Duration, apply func(changed []string)) {
	pending := make(map[string]bool)
	rescan := false
	var first, last time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()

	schedule := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		last = now
		fire := last.Add(debounce)
		if hard := first.Add(maxDelay); hard.Before(fire) {
			fire = hard
		}
		timer.Reset(time.Until(fire))
	}

	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			if filepath.Clean(filepath.Dir(ev.Name)) != filepath.Clean(c.dir) || !isHostFile(name) {
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue // metadata only
			}
			pending[name] = true
			schedule()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Printf("watch %s: %v", c.dir, err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				rescan = true
				schedule()
			}
		case <-timer.C:
			if rescan {
				names, err := listDir(c.dir)
				if err != nil {
					log.Printf("rescan %s: %v", c.dir, err)
				}
				for _, n := range names {
					pending[n] = true
				}
				for n := range c.files {
					pending[n] = true
				}
				rescan = false
			}
			changed := make([]string, 0, len(pending))
			for n := range pending {
				changed = append(changed, n)
			}
			sort.Strings(changed)
			clear(pending)
			first, last = time.Time{}, time.Time{}
			apply(changed)
		}
	}
}
