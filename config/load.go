package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSecretFile bounds a *_file read: secrets are short, and a path that
// points at /dev/zero or a log file must not take the process down.
const maxSecretFile = 64 << 10

// Load reads the configuration file at path and returns the effective
// configuration (decoded, secrets read, defaults applied, validated).
// Relative paths inside the file are relative to the file's directory.
// A problem with the contents is returned as an *Error listing them all.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a configuration document strictly, expands ${ENV} in its
// scalar values with lookupEnv, reads every X_file secret into X, makes
// relative file paths relative to baseDir ("" = the working directory),
// applies the defaults and validates the result.
//
// Every problem found on the way is reported at once, as an *Error. On error
// the returned *Config is nil: a half-decoded configuration is never
// something to run with.
func Parse(data []byte, lookupEnv func(string) (string, bool), baseDir string) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	var ps problems
	cfg := &Config{}
	root, ok := parseYAML(data, &ps)
	if !ok {
		return nil, ps.err()
	}
	if root != nil {
		d := decoder{lookupEnv: lookupEnv, probs: &ps}
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	resolvePaths(cfg, baseDir)
	readSecrets(reflect.ValueOf(cfg).Elem(), "", baseDir, &ps)
	ApplyDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		var verr *Error
		if errors.As(err, &verr) {
			ps.list = append(ps.list, verr.Problems...)
		} else {
			ps.addErr("", 0, err, "%v", err)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseYAML returns the root node of the only document in data (nil for an
// empty file). ok is false when the YAML itself cannot be used.
func parseYAML(data []byte, ps *problems) (root *yaml.Node, ok bool) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a configuration
		// that crashes the parser is an invalid configuration, not a crash.
		if r := recover(); r != nil {
			ps.add("", 0, "yaml: parser failed: %v", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		ps.addErr("", 0, err, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		ps.addErr("", 0, err, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	default:
		// Two documents would leave an operator guessing which one is live.
		ps.add("", next.Line, "multiple YAML documents are not supported (remove the ---)")
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

// resolvePaths makes relative file paths relative to the configuration
// file's directory, so the same file works whatever directory crmgate is
// started from. Secrets' *_file paths are resolved in readSecrets.
func resolvePaths(c *Config, baseDir string) {
	c.TLS.CertFile = resolve(baseDir, c.TLS.CertFile)
	c.TLS.KeyFile = resolve(baseDir, c.TLS.KeyFile)
	c.DecisionLog.File = resolve(baseDir, c.DecisionLog.File)
	for i, p := range c.Policy.Paths {
		c.Policy.Paths[i] = resolve(baseDir, p)
	}
}

func resolve(baseDir, p string) string {
	if p == "" || baseDir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// readSecrets walks the schema for every string pair X / X_file (found by
// their yaml tags, so a secret added to the schema later is covered
// without touching this code) and reads the file into X. X_file is kept,
// resolved against baseDir, so that a reload knows where the secret lives.
func readSecrets(v reflect.Value, path, baseDir string, ps *problems) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			readSecrets(v.Elem(), path, baseDir, ps)
		}
		return
	case reflect.Struct:
	default:
		return
	}
	t := v.Type()
	fields := yamlFields(t)
	names := make([]string, t.NumField())
	for name, i := range fields {
		names[i] = name
	}
	// Field order, not map order: problems must come out the same way twice.
	for i, name := range names {
		base, isFile := strings.CutSuffix(name, "_file")
		j, hasBase := fields[base]
		if !isFile || !hasBase || v.Field(i).Kind() != reflect.String || v.Field(j).Kind() != reflect.String {
			continue
		}
		fileField, valueField := v.Field(i), v.Field(j)
		file := fileField.String()
		if file == "" {
			continue
		}
		if valueField.String() != "" {
			ps.add(field(path, base), 0, "set together with %s; use only one", field(path, name))
			continue
		}
		file = resolve(baseDir, file)
		fileField.SetString(file)
		secret, err := readSecretFile(file)
		if err != nil {
			ps.addErr(field(path, name), 0, err, "%v", err)
			continue
		}
		valueField.SetString(secret)
	}
	for i, name := range names {
		if name != "" {
			readSecrets(v.Field(i), field(path, name), baseDir, ps)
		}
	}
}

// readSecretFile returns a secret file's contents without one trailing
// newline (editors and `echo` add one; a key with "\n" in it is never
// intended). An empty secret is refused rather than used.
func readSecretFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", name, unwrapPath(err))
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("read secret %s: larger than %d bytes", name, maxSecretFile)
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("read secret %s: file is empty", name)
	}
	return s, nil
}

// unwrapPath drops *fs.PathError's own copy of the path, which the caller
// already names, while keeping the cause for errors.Is.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
