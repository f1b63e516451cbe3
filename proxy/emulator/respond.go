package emulator

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody caps request bodies the emulators read.
const maxBody = 1 << 20

// writeJSON writes v with the given content type and status, gzipped when
// enabled and accepted. The emulators never write half a body on error:
// they marshal first.
func writeJSON(w http.ResponseWriter, r *http.Request, gz bool, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "marshal response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	if gz {
		h.Add("Vary", "Accept-Encoding")
	}
	if gz && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && !zeroQ(params) {
				return true
			}
		}
	}
	return false
}

// zeroQ reports whether an Accept-Encoding parameter list says q=0.
func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			f, err := strconv.ParseFloat(v, 64)
			return err == nil && f == 0
		}
	}
	return false
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}
