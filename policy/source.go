package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"gopkg.in/yaml.v3"
)

// Source says where policies and data come from: files and directories on
// disk, or a file system such as the embedded reference policy (rego.FS).
//
// When FS is set, Paths name files or directories inside it and default to
// the root ("."); otherwise Paths are on disk and at least one is required.
// Directories are read recursively; .rego files are policies, files ending
// in _test.rego are tests (run by Test, never evaluated by an Engine), and
// .json, .yaml and .yml files are data. Other files and anything whose name
// starts with a dot are skipped. A data file found in a sub-directory of a
// named directory is merged under data.<sub>.<dir> the way OPA's loader does;
// a data file at the top of a named directory, or named itself, must hold an
// object and is merged at the root of data.
type Source struct {
	Paths []string
	FS    fs.FS

	// files, when not nil, are the whole source (a bundle read by
	// ReadBundle); Paths and FS are then ignored.
	files []sourceFile
	// revision, when set, replaces the content hash as the revision (a
	// bundle's manifest revision).
	revision string
}

// sourceFile is one file read from a Source.
type sourceFile struct {
	// name is the path used in error messages and the revision.
	name string
	// prefix is where a data file's document goes under data.
	prefix []string
	raw    []byte
}

// loaded is everything read from a Source, parsed but not compiled.
type loaded struct {
	modules map[string]*ast.Module
	tests   map[string]*ast.Module
	// data is the merged data document, JSON-shaped (map[string]any,
	// []any, string, json.Number, bool, nil).
	data     map[string]any
	revision string
}

// readSource reads and parses every policy, test and data file of src.
// Errors name the file and, where the parser knows it, the line and column.
func readSource(src Source, pkg string, withTests bool) (*loaded, error) {
	files, err := listSource(src)
	if err != nil {
		return nil, err
	}
	out := &loaded{
		modules: map[string]*ast.Module{},
		tests:   map[string]*ast.Module{},
		data:    map[string]any{},
	}
	var errs []error
	hash := sha256.New()
	// The same files read under another package root are another policy.
	writeHashed(hash, "package", pkg, nil)
	for _, f := range files {
		switch {
		case isTestFile(f.name) && !withTests:
			// An Engine never evaluates tests, so a broken test must not
			// stop a policy from loading; Test reports it.
			continue
		case strings.HasSuffix(f.name, ".rego"):
			mod, err := ast.ParseModuleWithOpts(f.name, string(f.raw), ast.ParserOptions{
				RegoVersion:       ast.RegoV1,
				ProcessAnnotation: true,
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if isTestFile(f.name) {
				out.tests[f.name] = mod
				continue
			}
			out.modules[f.name] = mod
			writeHashed(hash, "rego", f.name, f.raw)
		default:
			doc, err := parseData(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := mergeData(out.data, f.prefix, doc, f.name); err != nil {
				errs = append(errs, err)
				continue
			}
			writeHashed(hash, "data", strings.Join(f.prefix, "/")+"|"+f.name, f.raw)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out.revision = hex.EncodeToString(hash.Sum(nil))[:16]
	if src.revision != "" {
		out.revision = src.revision
	}
	return out, nil
}

// writeHashed adds one length-prefixed file to the revision hash, so that
// moving bytes between files or names can never produce the same digest.
func writeHashed(w io.Writer, kind, name string, raw []byte) {
	fmt.Fprintf(w, "%s %d %s %d\n", kind, len(name), name, len(raw))
	_, _ = w.Write(raw)
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// listSource walks src and returns its policy and data files in a stable
// order (sorted by name), so the revision does not depend on walk order.
func listSource(src Source) ([]sourceFile, error) {
	if src.files != nil {
		return src.files, nil
	}
	paths := src.Paths
	if src.FS != nil && len(paths) == 0 {
		paths = []string{"."}
	}
	if len(paths) == 0 {
		return nil, errors.New("no policy paths")
	}
	var files []sourceFile
	seen := map[string]bool{}
	for _, root := range paths {
		found, err := walkRoot(src.FS, root)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			key := strings.Join(f.prefix, "/") + "|" + f.name
			if seen[key] {
				continue
			}
			seen[key] = true
			files = append(files, f)
		}
	}
	slices.SortFunc(files, func(a, b sourceFile) int { return strings.Compare(a.name, b.name) })
	return files, nil
}

// walkRoot lists one configured path, which may be a file or a directory.
func walkRoot(fsys fs.FS, root string) ([]sourceFile, error) {
	stat, readFile, walk := os.Stat, os.ReadFile, filepath.WalkDir
	rel := filepath.Rel
	if fsys != nil {
		root = path.Clean(filepath.ToSlash(root))
		stat = func(name string) (fs.FileInfo, error) { return fs.Stat(fsys, name) }
		readFile = func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) }
		walk = func(name string, fn fs.WalkDirFunc) error { return fs.WalkDir(fsys, name, fn) }
		rel = func(base, target string) (string, error) {
			if base == "." {
				return target, nil
			}
			return strings.TrimPrefix(target, base+"/"), nil
		}
	}
	info, err := stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		if !isPolicyFile(root) && !isDataFile(root) {
			return nil, fmt.Errorf("%s: not a .rego, .json, .yaml or .yml file", root)
		}
		raw, err := readFile(root)
		if err != nil {
			return nil, err
		}
		return []sourceFile{{name: root, raw: raw}}, nil
	}
	var out []sourceFile
	err = walk(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || (!isPolicyFile(name) && !isDataFile(name)) {
			return nil
		}
		raw, err := readFile(name)
		if err != nil {
			return err
		}
		f := sourceFile{name: name, raw: raw}
		if isDataFile(name) {
			r, err := rel(root, name)
			if err != nil {
				return err
			}
			if dir := filepath.ToSlash(filepath.Dir(r)); dir != "." {
				f.prefix = strings.Split(dir, "/")
			}
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

func isPolicyFile(name string) bool { return strings.HasSuffix(name, ".rego") }

func isDataFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// parseData decodes a JSON or YAML data file into JSON-shaped Go values.
func parseData(f sourceFile) (any, error) {
	var doc any
	if strings.HasSuffix(strings.ToLower(f.name), ".json") {
		dec := json.NewDecoder(bytes.NewReader(f.raw))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, jsonError(f, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			line, col := lineCol(f.raw, dec.InputOffset())
			return nil, fmt.Errorf("%s:%d:%d: data_parse_error: unexpected data after the top-level value", f.name, line, col)
		}
	} else {
		var raw any
		if err := yaml.Unmarshal(f.raw, &raw); err != nil {
			return nil, fmt.Errorf("%s: data_parse_error: %w", f.name, err)
		}
		var err error
		if doc, err = fromYAML(raw); err != nil {
			return nil, fmt.Errorf("%s: data_parse_error: %w", f.name, err)
		}
	}
	if _, ok := doc.(map[string]any); !ok && len(f.prefix) == 0 {
		return nil, fmt.Errorf("%s: data_parse_error: a data file at the root of data must hold an object", f.name)
	}
	return doc, nil
}

// jsonError turns a decoder error into file:line:col.
func jsonError(f sourceFile, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		// Offset counts the bytes read, including the offending one.
		line, col := lineCol(f.raw, syntax.Offset-1)
		return fmt.Errorf("%s:%d:%d: data_parse_error: %w", f.name, line, col, err)
	case errors.As(err, &typ):
		line, col := lineCol(f.raw, typ.Offset)
		return fmt.Errorf("%s:%d:%d: data_parse_error: %w", f.name, line, col, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		line, col := lineCol(f.raw, int64(len(f.raw)))
		return fmt.Errorf("%s:%d:%d: data_parse_error: unexpected end of JSON", f.name, line, col)
	}
	return fmt.Errorf("%s: data_parse_error: %w", f.name, err)
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(raw []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(raw)))
	before := raw[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// fromYAML converts yaml.v3's decoded values to the JSON shapes the store
// expects, refusing what JSON cannot express (non-string keys).
func fromYAML(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			c, err := fromYAML(x)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			c, err := fromYAML(x)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			c, err := fromYAML(x)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case int:
		return json.Number(strconv.Itoa(v)), nil
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(v, 10)), nil
	case float64:
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case string, bool, nil:
		return v, nil
	}
	return nil, fmt.Errorf("unsupported YAML value of type %T", v)
}

// mergeData places doc at prefix inside dst, merging objects and refusing
// to overwrite a value another file already set.
func mergeData(dst map[string]any, prefix []string, doc any, name string) error {
	if len(prefix) == 0 {
		// parseData guarantees an object at the root.
		return mergeObject(dst, doc.(map[string]any), nil, name)
	}
	for i, k := range prefix[:len(prefix)-1] {
		next, ok := dst[k]
		if !ok {
			m := map[string]any{}
			dst[k] = m
			dst = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: data_merge_error: data.%s is already set by another file", name, strings.Join(prefix[:i+1], "."))
		}
		dst = m
	}
	return mergeObject(dst, map[string]any{prefix[len(prefix)-1]: doc}, prefix[:len(prefix)-1], name)
}

func mergeObject(dst, src map[string]any, at []string, name string) error {
	for k, v := range src {
		here := append(slices.Clone(at), k)
		old, exists := dst[k]
		if !exists {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: data_merge_error: data.%s is already set by another file", name, strings.Join(here, "."))
		}
		if err := mergeObject(om, nm, here, name); err != nil {
			return err
		}
	}
	return nil
}
