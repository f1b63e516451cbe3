package demo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/demo"
)

// TestDemoAnswersItsCommands runs the demo as `crmgate demo` does and sends
// every command it prints, checking each persona gets the answer the
// command's description promises.
func TestDemoAnswersItsCommands(t *testing.T) {
	env, printed := startDemo(t, "")
	for _, c := range demo.Commands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) { sendDemoCommand(t, env, printed, c) })
	}
	t.Run("refuses a non-loopback address", func(t *testing.T) {
		err := demo.Run(context.Background(), demo.Options{Listen: "0.0.0.0:0"})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("err = %v", err)
		}
	})
}
