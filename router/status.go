package router

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// statusSettle is how long the publisher lets changes gather after the
// first one before it publishes them together.
const statusSettle = time.Second

// statusPublisher writes what a router knows about its tenants: its
// RouterStatus of a tenant whenever it changes (in batches, at most once
// per statusSettle) and every heartbeat, to <prefix>.status and, for a
// tenant with its own config topic, to <prefix>.status.<tenant>; and the
// good/ and retired/ records the registry asks for. Records are produced
// asynchronously: nothing waits for one write before the next, so the
// client batches them, and 10,000 tenants take a few produce requests.
type statusPublisher struct {
	cl        *kgo.Client // not transactional
	topics    kafka.Topics
	router    string
	reg       *registry
	heartbeat time.Duration
	settle    time.Duration
	onErr     func(tenant string, err error)

	last map[string][]byte // the last status published per tenant
}

func newStatusPublisher(cl *kgo.Client, topics kafka.Topics, router string, reg *registry, heartbeat time.Duration, onErr func(string, error)) *statusPublisher {
	return &statusPublisher{cl: cl, topics: topics, router: router, reg: reg, heartbeat: heartbeat, settle: statusSettle,
		onErr: onErr, last: map[string][]byte{}}
}

// run publishes every tenant's status at once, then changes as they come
// and everything every heartbeat, until ctx ends.
func (p *statusPublisher) run(ctx context.Context) {
	t := time.NewTicker(p.heartbeat)
	defer t.Stop()
	all := true
	for {
		p.round(ctx, all)
		all = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			all = true
		case <-p.reg.changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(p.settle):
			}
		}
	}
}

// round produces the records of the tenants whose status changed (every
// tenant with all) and returns how many it produced.
func (p *statusPublisher) round(ctx context.Context, all bool) int {
	n := 0
	produce := func(tenant string, rec *kgo.Record, retry func()) {
		n++
		p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err == nil || ctx.Err() != nil {
				return
			}
			if retry != nil {
				retry()
			}
			p.onErr(tenant, err)
		})
	}
	for _, o := range p.reg.drain(p.router, all) {
		tenant := o.status.Tenant
		v, err := json.Marshal(o.status)
		if err != nil {
			continue
		}
		if all || !bytes.Equal(p.last[tenant], v) {
			p.last[tenant] = v
			key := []byte(StatusKey(tenant, p.router))
			produce(tenant, &kgo.Record{Topic: p.topics.Status(), Key: key, Value: v}, nil)
			if o.own {
				produce(tenant, &kgo.Record{Topic: p.topics.TenantStatus(tenant), Key: key, Value: v}, nil)
			}
		}
		switch {
		case o.good != nil:
			if v, err := json.Marshal(o.good); err == nil {
				produce(tenant, &kgo.Record{Topic: p.topics.Status(), Key: []byte(GoodKeyPrefix + tenant), Value: v},
					func() { p.reg.repend(tenant, true, false) })
			}
		case o.deleteGood:
			produce(tenant, &kgo.Record{Topic: p.topics.Status(), Key: []byte(GoodKeyPrefix + tenant)},
				func() { p.reg.repend(tenant, true, false) })
		}
		if o.retired != nil {
			if v, err := json.Marshal(o.retired); err == nil {
				produce(tenant, &kgo.Record{Topic: p.topics.Status(), Key: []byte(RetiredKeyPrefix + tenant), Value: v},
					func() { p.reg.repend(tenant, false, true) })
			}
		}
	}
	return n
}

// stop writes what is pending, then tombstones for every status record of
// this router, so that sluice pipeline get does not list routers long
// gone, and waits for them within ctx.
func (p *statusPublisher) stop(ctx context.Context) error {
	p.round(ctx, false)
	for _, st := range p.reg.statuses(p.router) {
		key := []byte(StatusKey(st.Tenant, p.router))
		p.cl.Produce(ctx, &kgo.Record{Topic: p.topics.Status(), Key: key}, nil)
		if p.reg.own(st.Tenant) {
			p.cl.Produce(ctx, &kgo.Record{Topic: p.topics.TenantStatus(st.Tenant), Key: key}, nil)
		}
	}
	return p.cl.Flush(ctx)
}
