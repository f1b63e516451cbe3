package app

import (
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/budget"
)

// buildBudgets opens the store read budgets are counted in: Redis on
// session.redis (its own client, under the same key prefix as the
// sessions) or memory. The returned func closes it and is safe to call
// more than once.
func buildBudgets(cfg *config.Config) (budget.Store, func()) {
	if cfg.Budgets.Store != config.StoreRedis {
		return budget.NewMemory(nil), func() {}
	}
	client := redis.NewUniversalClient(redisOptions(cfg.Session.Redis))
	var once sync.Once
	return budget.NewRedis(client, cfg.Session.Redis.KeyPrefix), func() { once.Do(func() { _ = client.Close() }) }
}
