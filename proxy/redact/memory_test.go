package redact

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// heapSampler is a body reader that measures the live heap every so often
// while Transform reads it.
type heapSampler struct {
	r     io.Reader
	every int
	since int
	peak  uint64
}

func (h *heapSampler) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.since += n
	if h.since >= h.every {
		h.since = 0
		h.sample()
	}
	return n, err
}

func (h *heapSampler) sample() {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.peak = max(h.peak, m.HeapAlloc)
}

// peakGrowth returns how far the live heap rose above its level before the
// call while a list of n records was transformed.
func peakGrowth(t *testing.T, c *Compiled, n int) uint64 {
	t.Helper()
	body := suiteList(n)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	h := &heapSampler{r: bytes.NewReader(body), every: 128 << 10}
	if _, err := c.Transform(io.Discard, h, ModeList); err != nil {
		t.Fatal(err)
	}
	h.sample()
	runtime.KeepAlive(body)
	if h.peak < before.HeapAlloc {
		return 0
	}
	return h.peak - before.HeapAlloc
}

// TestTransformMemoryBounded checks that memory does not grow with the list:
// ten times the records may cost at most a small constant more heap.
// Not parallel: it measures the whole process's heap.
func TestTransformMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("measures heap over a 10 MB body")
	}
	c := benchPlan(t)
	peakGrowth(t, c, 100) // warm the walker pool, as a running proxy would be
	small := peakGrowth(t, c, 1000)
	large := peakGrowth(t, c, 10000)
	t.Logf("peak live heap growth: 1 MB list %d KiB, 10 MB list %d KiB", small>>10, large>>10)
	const slack = 4 << 20
	if large > small+slack {
		t.Fatalf("10 MB list grew the heap by %d bytes, 1 MB list by %d: more than %d apart", large, small, slack)
	}
}
