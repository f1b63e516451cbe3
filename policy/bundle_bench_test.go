package policy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"testing"

	"github.com/crmgate/crmgate/policy"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// referenceBundle packs the reference policy as a bundle server would.
func referenceBundle(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := fs.WalkDir(refpolicy.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(refpolicy.FS, p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "/" + p, Mode: 0o644, Size: int64(len(raw)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(raw)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadBundle is the cost of unpacking the reference policy's
// bundle, before compiling.
func BenchmarkReadBundle(b *testing.B) {
	raw := referenceBundle(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := policy.ReadBundle(bytes.NewReader(raw), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReloadSourceBundle is what one changed bundle costs a replica:
// unpack, compile and prepare the reference policy, then swap it in.
func BenchmarkReloadSourceBundle(b *testing.B) {
	raw := referenceBundle(b)
	ctx := context.Background()
	src, err := policy.ReadBundle(bytes.NewReader(raw), 0)
	if err != nil {
		b.Fatal(err)
	}
	e, err := policy.Load(ctx, policy.Options{Source: src})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		src, err := policy.ReadBundle(bytes.NewReader(raw), 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.ReloadSource(ctx, src); err != nil {
			b.Fatal(err)
		}
	}
}
