package policy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// DefaultMaxBundleBytes bounds a bundle when ReadBundle is given no limit:
// both the compressed stream and everything it decompresses to.
const DefaultMaxBundleBytes = 64 << 20

// maxRevisionLen bounds a manifest revision: it becomes a metric label and
// part of every decision-log line, and the bundle server chooses it.
const maxRevisionLen = 128

// ErrBundleTooLarge means a bundle, compressed or not, exceeds the limit
// given to ReadBundle.
var ErrBundleTooLarge = errors.New("bundle too large")

// ReadBundle reads an OPA bundle, a gzipped tarball of .rego policies,
// data.json/data.yaml documents and an optional .manifest, and returns the
// Source that loads it into an Engine (Load or ReloadSource). It reads at
// most maxBytes compressed and maxBytes uncompressed (DefaultMaxBundleBytes
// when maxBytes <= 0), so a bundle server cannot exhaust memory.
//
// The Engine's revision becomes the manifest's revision, or, when the
// manifest has none, the content hash a file Source would get. The manifest's
// roots are enforced by OPA's reader: a bundle cannot place policy or data
// outside them.
//
// Refused, because crmgate could not enforce them as their author meant:
// delta bundles, Wasm and plan modules, Rego v0 modules (crmgate compiles
// Rego v1 only), and signed bundles (crmgate has no verification keys to
// check a signature with, and ignoring one would pretend it was checked).
// The policy itself is only compiled here; Load and ReloadSource reject a
// bundle that does not compile.
func ReadBundle(r io.Reader, maxBytes int64) (Source, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBundleBytes
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return Source{}, fmt.Errorf("read bundle: %w", err)
	}
	if int64(len(raw)) > maxBytes {
		return Source{}, fmt.Errorf("read bundle: %w: more than %d bytes compressed", ErrBundleTooLarge, maxBytes)
	}
	// OPA's tarball reader bounds each file but not their number, so the
	// whole stream is measured first; decompressing twice costs little next
	// to compiling the policy.
	if err := checkUncompressed(raw, maxBytes); err != nil {
		return Source{}, fmt.Errorf("read bundle: %w", err)
	}
	loader := bundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithSizeLimitBytes(maxBytes)
	b, err := bundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true).
		WithSizeLimitBytes(maxBytes).
		Read()
	if err != nil {
		return Source{}, fmt.Errorf("read bundle: %w", err)
	}
	return bundleSource(&b)
}

// checkUncompressed fails when raw does not gunzip within maxBytes.
func checkUncompressed(raw []byte, maxBytes int64) error {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer zr.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(zr, maxBytes+1))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if n > maxBytes {
		return fmt.Errorf("%w: more than %d bytes uncompressed", ErrBundleTooLarge, maxBytes)
	}
	return nil
}

// bundleSource turns a read bundle into the files a Source is made of. The
// modules are kept as raw text and parsed again by readSource, so a bundle
// and a directory holding the same files are checked by exactly the same
// parser options and give the same errors.
func bundleSource(b *bundle.Bundle) (Source, error) {
	switch {
	case b.Type() == bundle.DeltaBundleType:
		return Source{}, errors.New("read bundle: delta bundles are not supported")
	case len(b.WasmModules) > 0 || len(b.Wasm) > 0:
		return Source{}, errors.New("read bundle: wasm modules are not supported")
	case len(b.PlanModules) > 0:
		return Source{}, errors.New("read bundle: plan modules are not supported")
	}
	rev := b.Manifest.Revision
	if err := checkRevision(rev); err != nil {
		return Source{}, fmt.Errorf("read bundle: %w", err)
	}
	files := make([]sourceFile, 0, len(b.Modules)+1)
	seen := make(map[string]bool, len(b.Modules))
	for _, m := range b.Modules {
		name := strings.TrimPrefix(m.Path, "/")
		// A tarball may hold one name twice; which copy a reader keeps is
		// an accident, so neither is trusted.
		if seen[name] {
			return Source{}, fmt.Errorf("read bundle: %s appears twice", name)
		}
		seen[name] = true
		files = append(files, sourceFile{name: name, raw: m.Raw})
	}
	if len(b.Data) > 0 {
		// OPA's reader has already merged every data file at its path;
		// one root document carries the result. json.Marshal sorts keys,
		// so the content hash is stable.
		doc, err := json.Marshal(b.Data)
		if err != nil {
			return Source{}, fmt.Errorf("read bundle: data: %w", err)
		}
		files = append(files, sourceFile{name: "data.json", raw: doc})
	}
	return Source{files: files, revision: rev}, nil
}

// checkRevision refuses manifest revisions that cannot be logged and
// labelled as they are.
func checkRevision(rev string) error {
	if len(rev) > maxRevisionLen {
		return fmt.Errorf("manifest revision longer than %d bytes", maxRevisionLen)
	}
	if !utf8.ValidString(rev) {
		return errors.New("manifest revision is not valid UTF-8")
	}
	for _, r := range rev {
		if unicode.IsControl(r) {
			return fmt.Errorf("manifest revision contains control character %U", r)
		}
	}
	return nil
}
