package identity

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name    string
		values  []string // nil: no Authorization header at all
		want    string
		wantOK  bool
		wantErr bool
	}{
		{name: "absent", values: nil},
		{name: "bearer", values: []string{"Bearer " + tok}, want: tok, wantOK: true},
		{name: "scheme case-insensitive", values: []string{"bEaReR " + tok}, want: tok, wantOK: true},
		{name: "several spaces", values: []string{"Bearer   " + tok}, want: tok, wantOK: true},
		{name: "b64token padding", values: []string{"Bearer abc+/~_-.=="}, want: "abc+/~_-.==", wantOK: true},
		{name: "empty header value", values: []string{""}, wantErr: true},
		{name: "scheme only", values: []string{"Bearer"}, wantErr: true},
		{name: "scheme and space", values: []string{"Bearer "}, wantErr: true},
		{name: "two headers", values: []string{"Bearer " + tok, "Bearer " + tok}, wantErr: true},
		{name: "basic", values: []string{"Basic YWxpY2U6cHc="}, wantErr: true},
		{name: "bearer prefix word", values: []string{"Bearerx " + tok}, wantErr: true},
		{name: "tab separator", values: []string{"Bearer\t" + tok}, wantErr: true},
		{name: "two tokens", values: []string{"Bearer " + tok + " " + tok}, wantErr: true},
		{name: "comma list", values: []string{"Bearer " + tok + ", Bearer x"}, wantErr: true},
		{name: "padding in middle", values: []string{"Bearer ab=c"}, wantErr: true},
		{name: "only padding", values: []string{"Bearer =="}, wantErr: true},
		{name: "control char", values: []string{"Bearer ab\x00c"}, wantErr: true},
		{name: "non-ascii", values: []string{"Bearer abé"}, wantErr: true},
		{name: "trailing space", values: []string{"Bearer " + tok + " "}, wantErr: true},
		{name: "oversized", values: []string{"Bearer " + strings.Repeat("a", maxTokenBytes+1)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Authorization", v)
			}
			got, ok, err := BearerToken(h)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("err = %v, want ErrInvalidToken", err)
				}
				if ok || got != "" {
					t.Fatalf("error case returned token %q ok %v", got, ok)
				}
				return
			}
			if err != nil || ok != tt.wantOK || got != tt.want {
				t.Fatalf("got (%q, %v, %v), want (%q, %v, nil)", got, ok, err, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "Bearer", "basic x", "Bearer a b", "Bearer ==", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok, err := BearerToken(http.Header{"Authorization": {v}})
		if err != nil {
			if ok || got != "" {
				t.Fatalf("error with token %q", got)
			}
			return
		}
		// Whatever is accepted must be a single b64token that really was
		// in the header after a Bearer scheme.
		if !ok || !isB64Token(got) || !strings.HasSuffix(v, " "+got) || !strings.EqualFold(v[:6], "bearer") {
			t.Fatalf("accepted %q from %q", got, v)
		}
	})
}

// TestB64TokenAlphabet checks every byte against RFC 6750's b64token
// grammar, written independently as a regular expression.
func TestB64TokenAlphabet(t *testing.T) {
	grammar := regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)
	for c := range 256 {
		for _, s := range []string{string([]byte{byte(c)}), "ab" + string([]byte{byte(c)}), "ab" + string([]byte{byte(c)}) + "=", "ab=" + string([]byte{byte(c)})} {
			if got, want := isB64Token(s), grammar.MatchString(s); got != want {
				t.Errorf("isB64Token(%q) = %v, want %v", s, got, want)
			}
		}
	}
}
