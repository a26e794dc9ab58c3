package devstack

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKafka starts the embedded Kafka of the dev stack and the load test:
// one kfake broker listening on addr (host:port; port 0 picks one) that
// keeps its log under dir, so that a restart on the same dir continues
// where it stopped. Topics are made explicitly, with 3 partitions unless
// told otherwise.
func StartKafka(addr, dir string, opts ...kfake.Opt) (*kfake.Cluster, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %s is not free: %w", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return nil, err
	}
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on port %s: %w", strconv.Itoa(port), err)
	}
	return c, nil
}
