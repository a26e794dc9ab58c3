package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMaxMessageBytes is what a topic takes when its max.message.bytes
// cannot be read: Kafka's default (1 MiB and 12 bytes of batch overhead).
const DefaultMaxMessageBytes = 1048588

// ErrTopicMissing is returned (wrapped) when a topic does not exist.
var ErrTopicMissing = errors.New("topic does not exist")

// TopicMaxMessageBytes returns the largest record batch topic takes, its
// max.message.bytes (DefaultMaxMessageBytes when the broker does not say).
func TopicMaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return 0, err
	}
	if rc.Err != nil {
		if errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("%s: %w", topic, ErrTopicMissing)
		}
		return 0, rc.Err
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			n, err := strconv.Atoi(*c.Value)
			if err != nil {
				return 0, fmt.Errorf("%s: max.message.bytes %q: %w", topic, *c.Value, err)
			}
			return n, nil
		}
	}
	return DefaultMaxMessageBytes, nil
}
