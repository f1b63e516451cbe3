// Command crmgate is an identity-aware reverse proxy that enforces a CRM's
// access policy: it authenticates users with OpenID Connect, classifies each
// request as CRM module + record + action, decides with Rego, and redacts
// and filters what the CRM returns. The commands live in proxy/cli.
package main

import (
	"os"

	"github.com/crmgate/crmgate/proxy/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, version))
}
