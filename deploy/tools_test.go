package deploy

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external validator. A missing tool
// fails the test, never skips it: test/all.sh installs every one, and a
// validation that silently did not run is no validation.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required but not found (bash test/all.sh installs it): %v", name, err)
	}
	return p
}

// readFile reads a deployment file or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
