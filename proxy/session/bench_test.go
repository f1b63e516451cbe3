package session

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/test/testredis"
)

// BenchmarkGet measures the per-request cost of loading a session: the
// memory store, and Redis over loopback (two round trips: the session, then
// its user's revocation marker).
func BenchmarkGet(b *testing.B) {
	b.Run("Memory", func(b *testing.B) {
		benchGet(b, NewMemory(time.Now))
	})
	b.Run("Redis", func(b *testing.B) {
		admin := testredis.Client(b)
		prefix := testredis.Prefix(b, admin)
		r := NewRedis(redis.NewClient(&redis.Options{Addr: testredis.Addr()}), prefix, time.Now)
		defer r.Close()
		benchGet(b, r)
	})
}

func benchGet(b *testing.B, st Store) {
	ctx := context.Background()
	id, err := NewID()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Create(ctx, sessionWithID("alice", id), time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Get(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
