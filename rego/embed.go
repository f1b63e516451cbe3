// Package rego embeds crmgate's reference policy: the access rules of a
// department store's CRM (SuiteCRM 8 or EspoCRM), its data document and its
// Rego tests. `crmgate demo` serves it, and it is the example security teams
// start from.
package rego

import "embed"

// FS holds every .rego and .json file of the reference policy, tests
// included; policy.Load ignores *_test.rego and policy.Test runs them.
//
//go:embed *.rego *.json
var FS embed.FS
