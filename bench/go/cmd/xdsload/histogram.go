package main

import (
	"sync/atomic"
	"time"
)

// histogram counts latencies in 0.1 ms buckets up to 60 s; lock-free so that
// every client goroutine can record.
type histogram struct {
	buckets [600000]atomic.Uint64
	max     atomic.Int64
	count   atomic.Uint64
}

const bucketWidth = 100 * time.Microsecond

func (h *histogram) record(d time.Duration) {
	i := int(d / bucketWidth)
	if i < 0 {
		i = 0
	} else if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	for {
		old := h.max.Load()
		if int64(d) <= old || h.max.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// quantile is the upper edge of the bucket holding quantile q, in ms.
func (h *histogram) quantile(q float64) float64 {
	total := h.count.Load()
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total) + 0.5)
	if want == 0 {
		want = 1
	}
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= want {
			return float64(i+1) * float64(bucketWidth) / float64(time.Millisecond)
		}
	}
	return h.maxMillis()
}

func (h *histogram) maxMillis() float64 {
	return float64(h.max.Load()) / float64(time.Millisecond)
}
