package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no document crashes the loader, that every problem
// is well formed, and that what Parse accepts is a fixed point: valid, and
// unchanged by applying the defaults again.
func FuzzParse(f *testing.F) {
	if full, err := os.ReadFile(filepath.Join("testdata", "full.yaml")); err == nil {
		f.Add(string(full))
	}
	for _, seed := range []string{
		minimalYAML,
		"",
		"listen: [\n",
		"a: &a [x]\nb: *a\n",
		"upstream:\n  ulr: x\n  url: x\n  url: y\n",
		"upstream:\n  timeout: ${T:-5s}\n  url: ${U}\n",
		"---\n---\n",
		"crm:\n  routes:\n    - {method: GET, path: /api/{module}, action: list, kind: list}\n",
		"admin: {token: $${x}, token_file: /dev/null}\n",
		"identity:\n  roles:\n    \"a.b\": [x]\n  bearer: {enabled: TRUE}\n",
		"<<: {listen: x}\n",
		"listen: !!binary aGk=\n",
	} {
		f.Add(seed)
	}
	vars := env(map[string]string{"T": "30s", "U": "http://crm.internal", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, doc string) {
		// Relative *_file paths resolve inside an empty directory; absolute
		// ones can only be read (bounded by maxSecretFile), never written.
		cfg, err := Parse([]byte(doc), vars, t.TempDir())
		if err != nil {
			if cfg != nil {
				t.Fatal("Parse returned a config together with an error")
			}
			for _, p := range problemsOf(t, err) {
				if p.Msg == "" {
					t.Fatalf("problem without a message: %+v", p)
				}
				if strings.ContainsAny(p.Path, "\n") {
					t.Fatalf("path with a newline: %q", p.Path)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
		again := *cfg
		ApplyDefaults(&again)
		if !reflect.DeepEqual(again, *cfg) {
			t.Fatal("Parse returned a config that ApplyDefaults still changes")
		}
	})
}
