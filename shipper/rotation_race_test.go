package shipper

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// Kubelet rotates a container's log whenever it likes; these tests make it
// rotate at the worst moments of the shipper's looks at a log's files (by
// wrapping the listing of rotations, or while a new follower waits for its
// pod), and check that every line arrives once, in order.

// rotateDuringListing makes the next listing of rotations, once armed, run
// kubelet first (when before) or after the listing (otherwise): kubelet
// appends lines to the current file and rotates it, times times, and
// lines go to the file that is current then. fired is closed once it did.
type rotateDuringListing struct {
	t      *testing.T
	w      *numbered
	before bool
	times  int
	armed  atomic.Bool
	fired  chan struct{}
}

func newRotateDuringListing(t *testing.T, w *numbered, before bool, times int) *rotateDuringListing {
	return &rotateDuringListing{t: t, w: w, before: before, times: times, fired: make(chan struct{})}
}

func (k *rotateDuringListing) list(target string) ([]rotation, error) {
	if k.before && k.armed.CompareAndSwap(true, false) {
		k.rotate()
	}
	rots, err := listRotations(target)
	if !k.before && k.armed.CompareAndSwap(true, false) {
		k.rotate()
	}
	return rots, err
}

func (k *rotateDuringListing) rotate() {
	defer close(k.fired)
	for range k.times {
		k.w.write(10)
		if _, err := k.w.c.Rotate(); err != nil {
			k.t.Error(err)
			return
		}
	}
	k.w.write(10)
}

// wait waits until kubelet rotated (the test's writer is the test's again).
func (k *rotateDuringListing) wait() {
	k.t.Helper()
	select {
	case <-k.fired:
	case <-time.After(20 * time.Second):
		k.t.Fatal("the shipper did not list rotations within 20s")
	}
}

// wantInOrder waits for lines "c#from" to "c#<to-1>" and checks that they
// arrived each once, in order: one container is one partition, so a line
// read twice arrives before the lines after it.
func wantInOrder(t *testing.T, cons *consumer, from, to int) {
	t.Helper()
	got := cons.waitFor(30*time.Second, "every line", func(l []line) bool {
		seen := map[string]bool{}
		for _, x := range l {
			head, _, _ := strings.Cut(x.rec.Log, " ")
			seen[head] = true
		}
		return len(seen) >= to-from
	})
	want := seqNames("c", from, to)
	var heads []string
	for _, x := range got {
		head, _, _ := strings.Cut(x.rec.Log, " ")
		heads = append(heads, head)
	}
	if strings.Join(heads, " ") != strings.Join(want, " ") {
		t.Errorf("got lines\n%v\nwant each once, in order\n%v", heads, want)
	}
}

// TestRotationDuringFollow: kubelet rotates while the shipper follows a
// rotation, before or after it lists the rotations, once or twice. The
// file renamed meanwhile is read all the same, and no file twice.
func TestRotationDuringFollow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool
		times  int
	}{
		{"before the listing", true, 1},
		{"after the listing", false, 1},
		{"twice after the listing", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := newCluster(t, "logs.raw.shop")
			brokers := cluster.ListenAddrs()
			node := &nodelog.Node{Root: t.TempDir()}
			c, err := node.AddContainer("shop", "p", "c", nodelog.CRI)
			if err != nil {
				t.Fatal(err)
			}
			w := &numbered{c: c}
			k := newRotateDuringListing(t, w, tc.before, tc.times)
			startShipperWith(t, testConfig(t, node, brokers, nil), Options{}, func(sh *Shipper) { sh.rotations = k.list })
			w.write(10)
			cons := newConsumer(t, brokers, "logs.raw.shop")
			cons.waitFor(20*time.Second, "the first lines", atLeast(10))

			k.armed.Store(true)
			rotate(t, c) // the shipper follows it, and lists the rotations
			k.wait()
			w.write(10)
			wantInOrder(t, cons, 0, w.n)
		})
	}
}

// TestRotationWhileOpening: kubelet rotates between the shipper opening a
// container's current file and listing its rotations, for a container
// found on a later run (all of whose rotations are read) and for one
// resumed from its checkpoint. The file opened is not read twice (once
// under its rotated name), and the rotations after it are read after it.
func TestRotationWhileOpening(t *testing.T) {
	for _, resume := range []bool{false, true} {
		name := map[bool]string{false: "new container", true: "resumed"}[resume]
		t.Run(name, func(t *testing.T) {
			cluster := newCluster(t, "logs.raw.shop")
			brokers := cluster.ListenAddrs()
			node := &nodelog.Node{Root: t.TempDir()}
			c, err := node.AddContainer("shop", "p", "c", nodelog.CRI)
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, node, brokers, nil)
			w := &numbered{c: c}
			w.write(10)
			cons := newConsumer(t, brokers, "logs.raw.shop")
			if resume {
				r := startShipper(t, cfg, Options{})
				cons.waitFor(20*time.Second, "the first lines", atLeast(10))
				r.stop(t)
			} else {
				notFirstRun(t, cfg)
			}
			rotate(t, c)
			w.write(10)

			k := newRotateDuringListing(t, w, true, 2)
			k.armed.Store(true)
			startShipperWith(t, cfg, Options{}, func(sh *Shipper) { sh.rotations = k.list })
			k.wait()
			w.write(10)
			wantInOrder(t, cons, 0, w.n)
		})
	}
}

// TestFirstRunFileRotatedBeforeOpen: on a node's first run, a file found
// by the first scan is rotated before its follower opens it (the follower
// waits for its pod's metadata). Its lines are read from the rotation: all
// of them (SLUICE_SHIPPER_READ_FROM=head), or those written after the scan
// (tail).
func TestFirstRunFileRotatedBeforeOpen(t *testing.T) {
	for _, from := range []string{"head", "tail"} {
		t.Run(from, func(t *testing.T) {
			cluster := newCluster(t, "logs.raw.shop")
			brokers := cluster.ListenAddrs()
			node := &nodelog.Node{Root: t.TempDir()}
			c, err := node.AddContainer("shop", "p", "c", nodelog.CRI)
			if err != nil {
				t.Fatal(err)
			}
			w := &numbered{c: c}
			w.write(10) // before the scan
			cs := fake.NewClientset(namespace("shop", nil))
			cfg := testConfig(t, node, brokers, map[string]string{
				"SLUICE_SHIPPER_KUBERNETES_METADATA": "on",
				"SLUICE_SHIPPER_METADATA_WAIT":       "1m", // the follower waits for its pod, which the test creates
				"SLUICE_SHIPPER_READ_FROM":           from,
			})
			startShipperWith(t, cfg, Options{}, func(sh *Shipper) { sh.kcs = clientsetAPI{cs} })
			w.write(5) // after the scan, before the open
			rotate(t, c)
			w.write(10)
			if _, err := cs.CoreV1().Pods("shop").Create(context.Background(),
				pod("shop", "p", c.PodUID, "node-a", "", "", nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			first := 0
			if from == "tail" {
				first = 10
			}
			wantInOrder(t, newConsumer(t, brokers, "logs.raw.shop"), first, w.n)
		})
	}
}
