package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// HTTP sink defaults: batches like OPA's uploader (fewer, larger POSTs), a
// bounded number of attempts so that a dead collector costs a few seconds
// per batch, not an ever-growing backlog.
const (
	httpMaxBatch    = 500
	httpLinger      = 2 * time.Second
	httpMaxAttempts = 4
	httpBackoff     = 250 * time.Millisecond
	httpMaxBackoff  = 5 * time.Second
	httpTimeout     = 30 * time.Second
	maxErrorBody    = 64 << 10
)

type httpSink struct {
	url         string
	client      *http.Client
	token       string
	maxBatch    int
	linger      time.Duration
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	ownClient   bool
}

// NewHTTPSink returns a Sink that uploads entries to an OPA decision-log
// endpoint: each batch is one POST of a gzip-compressed JSON array of
// events (Content-Type application/json, Content-Encoding gzip), with
// "Authorization: Bearer token" when token is set. A failed upload (network
// error, 408, 429 or 5xx) is retried with jittered exponential backoff, at
// most four attempts in all; other statuses are not retried. client nil
// means a client with a 30 s timeout.
func NewHTTPSink(url string, client *http.Client, token string) Sink {
	own := client == nil
	if own {
		client = &http.Client{Timeout: httpTimeout}
	}
	return &httpSink{
		ownClient:   own,
		url:         url,
		client:      client,
		token:       token,
		maxBatch:    httpMaxBatch,
		linger:      httpLinger,
		maxAttempts: httpMaxAttempts,
		backoff:     httpBackoff,
		maxBackoff:  httpMaxBackoff,
	}
}

func (s *httpSink) Batching() (int, time.Duration) { return s.maxBatch, s.linger }

// statusError is an upload answered with a non-2xx status.
type statusError struct {
	code int
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

func (e *statusError) retryable() bool {
	return e.code == http.StatusRequestTimeout || e.code == http.StatusTooManyRequests || e.code >= 500
}

func (s *httpSink) Write(ctx context.Context, batch []*Entry) (int, error) {
	body, err := gzipJSON(batch)
	if err != nil {
		return 0, fmt.Errorf("upload decision logs: %w", err)
	}
	wait := s.backoff
	for attempt := 1; ; attempt++ {
		retry, err := s.post(ctx, body)
		if err == nil {
			return len(batch), nil
		}
		if !retry {
			return 0, fmt.Errorf("upload decision logs: %w", err)
		}
		if attempt >= s.maxAttempts || ctx.Err() != nil {
			return 0, fmt.Errorf("upload decision logs: attempt %d: %w", attempt, err)
		}
		// Full jitter keeps replicas that failed together from retrying
		// together.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(wait) + 1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("upload decision logs: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, s.maxBackoff)
	}
}

// post makes one upload attempt and says whether a failure is worth
// retrying.
func (s *httpSink) post(ctx context.Context, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return true, err
	}
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &statusError{code: resp.StatusCode}
		return se.retryable(), se
	}
	return false, nil
}

func (s *httpSink) Close() error {
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	return nil
}

func gzipJSON(batch []*Entry) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(batch); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}
