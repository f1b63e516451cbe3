// Package bundletest provides an OPA bundle server for tests: it serves one
// bundle with an ETag, answers conditional requests with 304, checks a
// bearer token and counts what it answered.
package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
)

// Stats counts the server's answers by status.
type Stats struct {
	OK, NotModified, Unauthorized, Failed int
}

// Server is a running bundle server.
type Server struct {
	srv   *httptest.Server
	token string

	mu    sync.Mutex
	body  []byte
	etag  string
	fail  int
	stats Stats
}

// NewServer starts a server that requires "Authorization: Bearer token"
// (any request when token is empty). It serves nothing until Set.
func NewServer(token string) *Server {
	s := &Server{token: token}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the bundle's address.
func (s *Server) URL() string { return s.srv.URL + "/bundles/crmgate.tar.gz" }

// Client returns a client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Policy returns a minimal bundle whose policy allows every request, or
// none.
func Policy(allow bool) map[string]string {
	v := "false"
	if allow {
		v = "true"
	}
	return map[string]string{"/crmgate/policy.rego": "package crmgate\n\nallow := " + v + "\n\nreasons contains \"bundle says " + v + "\"\n"}
}

// Set serves a bundle of files (path → content) with a .manifest naming
// revision, or none when revision is empty, and stops failing.
func (s *Server) Set(revision string, files map[string]string) {
	all := make(map[string]string, len(files)+1)
	for k, v := range files {
		all[k] = v
	}
	if revision != "" {
		m, _ := json.Marshal(map[string]string{"revision": revision})
		all["/.manifest"] = string(m)
	}
	s.SetRaw(tarGz(all))
}

// SetRaw serves body as the bundle, whatever it holds, with an ETag
// derived from it, and stops failing.
func (s *Server) SetRaw(body []byte) {
	sum := sha256.Sum256(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.fail = body, `"`+hex.EncodeToString(sum[:8])+`"`, 0
}

// FailWith makes every request answer status until the next Set.
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = status
}

// Stats returns the answers so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token:
		s.stats.Unauthorized++
		w.WriteHeader(http.StatusUnauthorized)
	case s.fail != 0:
		s.stats.Failed++
		w.WriteHeader(s.fail)
	case s.body == nil:
		s.stats.Failed++
		w.WriteHeader(http.StatusNotFound)
	case r.Header.Get("If-None-Match") == s.etag:
		s.stats.NotModified++
		w.Header().Set("ETag", s.etag)
		w.WriteHeader(http.StatusNotModified)
	default:
		s.stats.OK++
		w.Header().Set("ETag", s.etag)
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(s.body)
	}
}

// tarGz packs files in name order, so equal files give equal bytes (and
// ETags).
func tarGz(files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		// Writes to a bytes.Buffer cannot fail.
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(files[n]))
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}
