// Package bundle keeps a policy engine current from an OPA bundle server,
// so that every replica converges on the same policy revision. It polls
// with conditional requests (ETag and If-None-Match), bounds what it
// downloads, backs off while the server fails, and replaces the policy only
// with a bundle that compiles: a broken bundle leaves the last good one
// serving.
package bundle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// DefaultMaxBackoff caps the wait between polls while polls fail, unless
// the poll interval is longer.
const DefaultMaxBackoff = 5 * time.Minute

// Options configure a Poller.
type Options struct {
	// URL is the bundle's address on the bundle server.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Interval is the time between polls; it must be positive.
	Interval time.Duration
	// MaxBackoff caps the wait after failed polls, which doubles with each
	// failure starting from Interval; DefaultMaxBackoff (or Interval, if
	// longer) when zero.
	MaxBackoff time.Duration
	// MaxBytes bounds the bundle, compressed and uncompressed;
	// policy.DefaultMaxBundleBytes when zero.
	MaxBytes int64
	// Client makes the requests; a client with a 30 s timeout when nil.
	Client *http.Client
}

// FetchError means the bundle could not be downloaded (network error or an
// unexpected status); other errors mean it was downloaded and refused.
type FetchError struct{ Err error }

func (e *FetchError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// Poller downloads one bundle and loads it into an Engine. It is safe for
// concurrent use; polls are serialised.
type Poller struct {
	o  Options
	mu sync.Mutex
	// etag is the ETag of the bundle serving now; it is only remembered
	// once that bundle has loaded, so a refused bundle is fetched again
	// (and refused again, visibly) rather than hidden behind a 304.
	etag string
}

// NewPoller checks o and returns a Poller.
func NewPoller(o Options) (*Poller, error) {
	if o.URL == "" {
		return nil, errors.New("bundle poller: no url")
	}
	if o.Interval <= 0 {
		return nil, errors.New("bundle poller: poll interval must be positive")
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.Interval)
	if o.MaxBytes <= 0 {
		o.MaxBytes = policy.DefaultMaxBundleBytes
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Poller{o: o}, nil
}

// Load downloads the bundle and compiles it into a new Engine with the
// package root pkg. A replica starts only once it has a policy: without
// one it could only deny.
func (p *Poller) Load(ctx context.Context, pkg string) (*policy.Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	src, etag, _, err := p.fetch(ctx, "")
	if err != nil {
		return nil, err
	}
	e, err := policy.Load(ctx, policy.Options{Source: src, Package: pkg})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", p.o.URL, err)
	}
	p.etag = etag
	return e, nil
}

// Poll asks the server for the bundle once and, when it has changed,
// swaps it into e. changed is false when the server answered 304 Not
// Modified; on error e keeps serving its current revision.
func (p *Poller) Poll(ctx context.Context, e *policy.Engine) (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	src, etag, modified, err := p.fetch(ctx, p.etag)
	if err != nil || !modified {
		return false, err
	}
	if err := e.ReloadSource(ctx, src); err != nil {
		return false, fmt.Errorf("bundle %s: %w", p.o.URL, err)
	}
	p.etag = etag
	return true, nil
}

// Run polls every Interval until ctx ends, calling report after each poll
// that loaded a new bundle (nil) or failed (the error). After a failure the
// next poll waits twice as long, up to MaxBackoff; waits are jittered by
// ±10% so replicas started together do not poll in lockstep.
func (p *Poller) Run(ctx context.Context, e *policy.Engine, report func(err error)) {
	failures := 0
	for {
		wait := p.o.Interval
		for i := 0; i < failures && wait < p.o.MaxBackoff; i++ {
			wait *= 2
		}
		wait = min(wait, p.o.MaxBackoff)
		wait += time.Duration(rand.Int64N(int64(wait)/5+1)) - wait/10
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		changed, err := p.Poll(ctx, e)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		if (changed || err != nil) && report != nil {
			report(err)
		}
	}
}

// fetch downloads the bundle, conditionally on etag when it is set.
func (p *Poller) fetch(ctx context.Context, etag string) (src policy.Source, newETag string, modified bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.o.URL, nil)
	if err != nil {
		return policy.Source{}, "", false, &FetchError{fmt.Errorf("fetch bundle: %w", err)}
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if p.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.o.Token)
	}
	res, err := p.o.Client.Do(req)
	if err != nil {
		// The client's error names the URL already.
		return policy.Source{}, "", false, &FetchError{fmt.Errorf("fetch bundle: %w", err)}
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotModified && etag != "":
		return policy.Source{}, etag, false, nil
	case res.StatusCode != http.StatusOK:
		// The body is the server's and may be anything; the status is
		// enough to act on.
		return policy.Source{}, "", false, &FetchError{fmt.Errorf("fetch bundle %s: server answered %s", p.o.URL, res.Status)}
	}
	src, err = policy.ReadBundle(res.Body, p.o.MaxBytes)
	if err != nil {
		return policy.Source{}, "", false, fmt.Errorf("bundle %s: %w", p.o.URL, err)
	}
	return src, res.Header.Get("ETag"), true, nil
}
