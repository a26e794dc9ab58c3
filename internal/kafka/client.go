package kafka

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// newClientMu serialises NewClient.
var newClientMu sync.Mutex

// NewClient is kgo.NewClient, one at a time. Stages build their clients
// from one shared slice of options (Config.Options plus their own), and
// kgo.NewClient writes to the codec list of ProducerBatchCompression while
// it validates: two clients created at once from the same options race on
// it. Creating a client sends nothing, so serialising it costs nothing
// that matters.
func NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	newClientMu.Lock()
	defer newClientMu.Unlock()
	return kgo.NewClient(opts...)
}
