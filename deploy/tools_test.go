package deploy

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external validator. test/all.sh
// installs every one and sets CRMGATE_TEST_REQUIRE_TOOLS=1, so in CI a
// missing tool fails the test; elsewhere (a laptop without promtool) the
// check is skipped and says so.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CRMGATE_TEST_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is required (CRMGATE_TEST_REQUIRE_TOOLS=1) but not found: %v", name, err)
	}
	t.Skipf("%s not installed (test/all.sh installs it): %v", name, err)
	return ""
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
