// Package testredis gives tests the real redis-server they run against
// (test/all.sh starts one and sets CRMGATE_TEST_REDIS; otherwise the local
// default), and key prefixes no other test or run shares.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addr is the test Redis address.
func Addr() string {
	if a := os.Getenv("CRMGATE_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Client connects to the test Redis and fails (never skips) when it does
// not answer: CI guarantees a server, so a missing one is a broken setup.
// The client is closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("redis-server at %s is required (set CRMGATE_TEST_REDIS or run test/all.sh): %v", Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a fresh key prefix ("crmgate-test:<random>:") and deletes
// every key under it through c when the test ends.
func Prefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "crmgate-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("clean up %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}
