package shipbench

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerPrefix starts the line RunBroker writes once it is serving:
// "kafka 127.0.0.1:34567".
const BrokerPrefix = "kafka "

// RunBroker runs a one-broker kfake cluster on a free loopback port, with
// topics made with partitions partitions each (as are topics auto-created
// later). Once it accepts connections it writes BrokerPrefix and its
// address, one line, to w; it serves until ctx is done.
func RunBroker(ctx context.Context, w io.Writer, partitions int, topics ...string) error {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(int32(partitions), topics...),
		kfake.DefaultNumPartitions(partitions),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return fmt.Errorf("shipbench: broker: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(w, "%s%s\n", BrokerPrefix, strings.Join(c.ListenAddrs(), ",")); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
