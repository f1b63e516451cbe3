package config

import (
	"strings"
	"testing"
)

// TestValidateBudgets: budgets.store redis needs session.redis; unknown
// stores and store-error choices and out-of-range reserves are refused
// with their path; defaults follow session.store and deny.
func TestValidateBudgets(t *testing.T) {
	c := valid()
	if c.Budgets.OnStoreError != BudgetDeny || c.Budgets.Store != c.Session.Store || c.Budgets.Reserve != 50 {
		t.Fatalf("defaults: %+v (session.store %s)", c.Budgets, c.Session.Store)
	}
	for _, tt := range []struct {
		name string
		set  func(*Config)
		path string
	}{
		{"redis without addrs", func(c *Config) { c.Budgets.Store = StoreRedis; c.Session.Redis.Addrs = nil }, "budgets.store"},
		{"unknown store", func(c *Config) { c.Budgets.Store = "etcd" }, "budgets.store"},
		{"unknown choice", func(c *Config) { c.Budgets.OnStoreError = "open" }, "budgets.on_store_error"},
		{"zero reserve", func(c *Config) { c.Budgets.Reserve = -1 }, "budgets.reserve"},
		{"huge reserve", func(c *Config) { c.Budgets.Reserve = 10001 }, "budgets.reserve"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.set(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %v, want one at %s", err, tt.path)
			}
		})
	}
}
