package proxy

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions configures the admin listener's handler.
type AdminOptions struct {
	// Token, when set, is required as a bearer token on every admin
	// endpoint except the probes.
	Token    string
	Gatherer prometheus.Gatherer
	// Ready reports whether this replica can serve (policy loaded, session
	// store reachable). Nil means always ready.
	Ready func(ctx context.Context) error
	// Extra mounts further admin endpoints (sessions, reload, reports).
	Extra map[string]http.Handler
}

// NewAdmin returns the admin listener's handler. It never shares a port
// with the main listener, so a client of the CRM cannot reach it.
func NewAdmin(o AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				// Admin callers are operators; the cause helps them and
				// never reaches CRM clients.
				_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	protected := http.NewServeMux()
	protected.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	for pattern, h := range o.Extra {
		protected.Handle(pattern, h)
	}
	mux.Handle("/", requireToken(o.Token, protected))
	return mux
}

// requireToken checks the admin bearer token in constant time.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			writeProblem(w, &Problem{Status: http.StatusUnauthorized, Kind: "unauthenticated", Title: "Authentication required",
				Detail: "The admin API needs the admin token.", Challenge: `Bearer realm="crmgate-admin"`}, "", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}
