package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
)

// tarEntry is one file of a hand-made bundle; size, when set, is the size
// the header claims instead of the real one.
type tarEntry struct {
	name string
	body string
	size int64
}

// tarGz writes a bundle by hand, so tests can build bundles OPA's writer
// would refuse to produce (duplicates, lying headers).
func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil && e.size == 0 {
			t.Fatal(err)
		}
		if e.size != 0 {
			// The header lies; stop here, as a hostile server would.
			_ = zw.Close()
			return buf.Bytes()
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const bundlePolicy = `package crmgate

allow if input.resource.module in data.crmgate_data.open_modules
`

func TestReadBundleLoadsPolicyAndData(t *testing.T) {
	t.Parallel()
	raw := tarGz(t,
		tarEntry{name: "/.manifest", body: `{"revision": "2026-11-23T12:00:00Z-abc", "roots": ["crmgate", "crmgate_data"]}`},
		tarEntry{name: "/crmgate/policy.rego", body: bundlePolicy},
		tarEntry{name: "/crmgate_data/data.json", body: `{"open_modules": ["Contacts"]}`},
		// Tests are carried but never evaluated, like on disk.
		tarEntry{name: "/crmgate/policy_test.rego", body: "package crmgate.policy_test\n\ntest_x if false\n"},
	)
	src, err := ReadBundle(bytes.NewReader(raw), 0)
	if err != nil {
		t.Fatalf("read bundle: %v", err)
	}
	e, err := Load(context.Background(), Options{Source: src})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got, want := e.Revision(), "2026-11-23T12:00:00Z-abc"; got != want {
		t.Fatalf("revision = %q, want the manifest's %q", got, want)
	}
	d, err := e.Decide(context.Background(), salesInput())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || d.Revision != e.Revision() {
		t.Fatalf("decision = %+v, want allow from the bundle's data with revision %q", d, e.Revision())
	}
	in := salesInput()
	in.Resource.Module = "Accounts"
	if d, err := e.Decide(context.Background(), in); err != nil || d.Allow {
		t.Fatalf("Accounts: allow=%v err=%v, want deny", d.Allow, err)
	}
}

func TestReadBundleWithoutManifestRevisionHashesContent(t *testing.T) {
	t.Parallel()
	revision := func(policy string) string {
		t.Helper()
		src, err := ReadBundle(bytes.NewReader(tarGz(t,
			tarEntry{name: "/crmgate/policy.rego", body: policy},
			tarEntry{name: "/crmgate_data/data.json", body: `{"open_modules": ["Contacts"]}`},
		)), 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Load(context.Background(), Options{Source: src})
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	a, again, other := revision(bundlePolicy), revision(bundlePolicy), revision(bundlePolicy+"\nreasons contains \"x\"\n")
	if a == "" || a != again {
		t.Fatalf("revision of the same bundle: %q then %q, want equal and non-empty", a, again)
	}
	if a == other {
		t.Fatalf("revision did not change with the policy: %q", a)
	}
}

func TestReadBundleRefuses(t *testing.T) {
	t.Parallel()
	policy := tarEntry{name: "/crmgate/policy.rego", body: bundlePolicy}
	tests := []struct {
		name string
		raw  func(t *testing.T) []byte
		max  int64
		// load: the bundle reads but must not load.
		load bool
		want string
		is   error
	}{
		{name: "not gzip", raw: func(*testing.T) []byte { return []byte("package crmgate\nallow := true\n") }, want: "invalid header"},
		{name: "truncated gzip", raw: func(t *testing.T) []byte { b := tarGz(t, policy); return b[:len(b)-10] }, want: "unexpected EOF"},
		{name: "compressed too large", raw: func(t *testing.T) []byte { return tarGz(t, policy) }, max: 20, is: ErrBundleTooLarge},
		{
			name: "gzip bomb",
			raw: func(t *testing.T) []byte {
				return tarGz(t, policy, tarEntry{name: "/pad/data.json", body: `{"x": "` + strings.Repeat("a", 1<<20) + `"}`})
			},
			max: 64 << 10, is: ErrBundleTooLarge, want: "uncompressed",
		},
		{
			name: "header claims a huge file",
			raw: func(t *testing.T) []byte {
				return tarGz(t, policy, tarEntry{name: "/crmgate/big.rego", body: "package crmgate\n", size: 1 << 40})
			},
			want: "size_limit_bytes",
		},
		{
			name: "syntax error",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/crmgate/policy.rego", body: "package crmgate\n\nallow if {\n"})
			},
			want: "rego_parse_error",
		},
		{
			name: "module outside the manifest roots",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"roots": ["other"]}`}, policy)
			},
			want: "roots",
		},
		{
			name: "data outside the manifest roots",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"roots": ["crmgate"]}`}, policy,
					tarEntry{name: "/crmgate_data/data.json", body: `{"open_modules": ["Accounts"]}`})
			},
			want: "roots",
		},
		{
			name: "signed bundle without keys",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.signatures.json", body: `{"signatures": ["eyJhbGciOiJIUzI1NiJ9.e30.x"]}`}, policy)
			},
			want: "verification key",
		},
		{
			name: "delta bundle",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"revision": "d1"}`},
					tarEntry{name: "/patch.json", body: `{"data": [{"op": "upsert", "path": "/crmgate_data/open_modules", "value": ["Accounts"]}]}`})
			},
			want: "delta",
		},
		{
			name: "wasm module",
			raw: func(t *testing.T) []byte {
				return tarGz(t, policy, tarEntry{name: "/policy.wasm", body: "\x00asm"})
			},
			want: "wasm",
		},
		{
			name: "same module twice",
			raw: func(t *testing.T) []byte {
				return tarGz(t, policy, tarEntry{name: "/crmgate/policy.rego", body: "package crmgate\n\nallow := true\n"})
			},
			want: "twice",
		},
		{
			name: "revision with a newline",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"revision": "r1\nfake log line"}`}, policy)
			},
			want: "control character",
		},
		{
			name: "revision too long",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"revision": "` + strings.Repeat("r", 200) + `"}`}, policy)
			},
			want: "longer than",
		},
		{
			name: "rego v0 module",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/.manifest", body: `{"rego_version": 0}`},
					tarEntry{name: "/crmgate/policy.rego", body: "package crmgate\n\nallow { true }\n"})
			},
			load: true, want: "rego_parse_error",
		},
		{
			name: "missing the contract package",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/other/policy.rego", body: "package other\n\nallow := true\n"})
			},
			load: true, want: "no policy module declares package crmgate",
		},
		{
			name: "compile error",
			raw: func(t *testing.T) []byte {
				return tarGz(t, tarEntry{name: "/crmgate/policy.rego", body: "package crmgate\n\nallow if x == 1\n"})
			},
			load: true, want: "rego_unsafe_var_error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := ReadBundle(bytes.NewReader(tt.raw(t)), tt.max)
			if tt.load {
				if err != nil {
					t.Fatalf("read bundle: %v (want it to read and fail to load)", err)
				}
				_, err = Load(context.Background(), Options{Source: src})
			}
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			t.Logf("error: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want errors.Is %v", err, tt.is)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestReloadSourceKeepsOldBundleOnError(t *testing.T) {
	t.Parallel()
	read := func(rev, policy string) Source {
		t.Helper()
		src, err := ReadBundle(bytes.NewReader(tarGz(t,
			tarEntry{name: "/.manifest", body: `{"revision": "` + rev + `"}`},
			tarEntry{name: "/crmgate/policy.rego", body: policy},
			tarEntry{name: "/crmgate_data/data.json", body: `{"open_modules": ["Contacts"]}`},
		)), 0)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	ctx := context.Background()
	e, err := Load(ctx, Options{Source: read("r1", bundlePolicy)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ReloadSource(ctx, read("r2", "package crmgate\n\nallow if x\n")); err == nil {
		t.Fatal("broken bundle accepted")
	}
	if e.Revision() != "r1" {
		t.Fatalf("revision after a failed reload = %q, want r1", e.Revision())
	}
	// Reload re-reads the last good source, not the broken one.
	if err := e.Reload(ctx); err != nil || e.Revision() != "r1" {
		t.Fatalf("reload: err=%v revision=%q, want r1 still", err, e.Revision())
	}
	if err := e.ReloadSource(ctx, read("r3", "package crmgate\n\nallow := false\n")); err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(ctx, salesInput())
	if err != nil || d.Allow || d.Revision != "r3" {
		t.Fatalf("after r3: allow=%v revision=%q err=%v, want deny from r3", d.Allow, d.Revision, err)
	}
}
