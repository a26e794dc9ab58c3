package shipbench

import (
	"strconv"
	"strings"
)

// The words of the filler text. None holds a quote, a backslash or one of
// the tokens Check looks for (seq=, big=1, eob=), so a message stays valid
// JSON and its tokens stay its own.
var words = strings.Fields(`
	request completed upstream downstream cache hit miss retry backoff timeout connection pool
	worker queue batch flushed committed offset partition leader replica election snapshot
	compaction segment rotated reloaded configuration watcher event handler reconcile object
	status updated observed generation deployment replicaset endpoint slice lease renewed
	session token refreshed validated tenant account order payment authorized declined
	inventory reserved released shipment scheduled notification delivered template rendered
	query planner index scan rows returned latency budget exceeded fallback circuit open
	closed half probe readiness liveness healthy degraded draining shutdown started listening`)

var (
	levels     = []string{"info", "info", "info", "info", "debug", "debug", "warn", "error"}
	loggers    = []string{"http.access", "db.pool", "kafka.consumer", "cache.lru", "scheduler", "grpc.client", "auth.session"}
	methods    = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"}
	paths      = []string{"/api/v1/orders", "/api/v1/orders/items", "/api/v2/cart", "/api/v1/payments/authorize", "/api/v1/users/profile", "/search", "/healthz", "/metrics", "/static/app.js"}
	statuses   = []int{200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 503}
	agents     = []string{"Go-http-client/1.1", "kube-probe/1.31", "Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "okhttp/4.12.0"}
	klogLevels = "IIIIIIWE"
	klogFiles  = []string{"reflector.go", "controller.go", "leaderelection.go", "reconciler.go", "server.go", "shared_informer.go", "event.go"}
	javaLevels = []string{" INFO", " INFO", " INFO", " INFO", "DEBUG", " WARN", "ERROR"}
	javaThread = []string{"main", "nio-8080-exec-", "kafka-producer-network-thread", "scheduling-", "HikariPool-1 housekeeper", "ForkJoinPool.commonPool-worker-"}
	javaClass  = []string{"c.e.orders.OrderService", "c.e.cart.CartController", "o.a.k.clients.NetworkClient", "c.z.hikari.pool.HikariPool", "o.s.web.servlet.DispatcherServlet", "i.n.channel.DefaultChannelPipeline"}
)

// message builds message seq, with the event time in g.ts, into
// g.msg and reports whether it is a long one. The slice is reused by the
// next call.
func (g *Generator) message(seq int) ([]byte, bool) {
	r := g.rng
	b := g.msg[:0]
	if g.w.BigFrac > 0 && r.Float64() < g.w.BigFrac {
		n := splitAt + 1 + r.IntN(g.w.BigMax-splitAt)
		b = append(b, "seq="...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, " big=1 len="...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " dump of the request state follows: "...)
		var tail [32]byte
		end := append(append(tail[:0], " eob="...), strconv.Itoa(seq)...)
		b = g.filler(b, n-len(end))
		b = append(b, end...)
		g.msg = b
		return b, true
	}
	target := g.size()
	if r.Float64() < g.w.JSONFrac {
		b = g.jsonMessage(b, seq, target)
	} else {
		switch r.IntN(3) {
		case 0:
			b = g.klogPrefix(b)
		case 1:
			b = g.accessPrefix(b)
		default:
			b = g.javaPrefix(b)
		}
		b = append(b, "seq="...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, ' ')
		b = g.filler(b, max(target, len(b)+8))
	}
	g.msg = b
	return b, false
}

// jsonMessage appends a JSON application log object of about target
// bytes whose "msg" starts with the seq token.
func (g *Generator) jsonMessage(b []byte, seq, target int) []byte {
	r := g.rng
	b = append(b, `{"time":"`...)
	b = append(b, g.ts.iso...)
	b = g.ts.appendFrac(b, 3)
	b = append(b, `Z","level":"`...)
	b = append(b, levels[r.IntN(len(levels))]...)
	b = append(b, `","logger":"`...)
	b = append(b, loggers[r.IntN(len(loggers))]...)
	b = append(b, `","msg":"seq=`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	// The fields after msg are built first, so that the filler makes the
	// whole object target bytes long.
	tail := g.jsonTail()
	b = g.filler(b, max(target-len(tail), len(b)+8))
	return append(b, tail...)
}

// jsonTail builds the fields after a JSON message's msg into its own
// buffer.
func (g *Generator) jsonTail() []byte {
	r := g.rng
	t := append(g.tail[:0], `","method":"`...)
	t = append(t, methods[r.IntN(len(methods))]...)
	t = append(t, `","path":"`...)
	t = append(t, paths[r.IntN(len(paths))]...)
	t = append(t, `","status":`...)
	t = strconv.AppendInt(t, int64(statuses[r.IntN(len(statuses))]), 10)
	t = append(t, `,"duration_ms":`...)
	t = strconv.AppendFloat(t, r.ExpFloat64()*25, 'f', 3, 64)
	t = append(t, `,"trace_id":"`...)
	t = g.appendHex(t, 32)
	t = append(t, `","span_id":"`...)
	t = g.appendHex(t, 16)
	t = append(t, `"}`...)
	g.tail = t
	return t
}

// klogPrefix: "I1121 10:00:00.123456       1 reconciler.go:412] ".
func (g *Generator) klogPrefix(b []byte) []byte {
	r := g.rng
	b = append(b, klogLevels[r.IntN(len(klogLevels))])
	b = append(b, g.ts.klog...)
	b = g.ts.appendFrac(b, 6)
	b = append(b, "       1 "...)
	b = append(b, klogFiles[r.IntN(len(klogFiles))]...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(20+r.IntN(980)), 10)
	return append(b, "] "...)
}

// accessPrefix: `10.244.3.17 - - [21/Nov/2026:10:00:00 +0000] "GET /search HTTP/1.1" 200 5321 "-" "curl/8.5.0" `.
func (g *Generator) accessPrefix(b []byte) []byte {
	r := g.rng
	b = append(b, "10.244."...)
	b = strconv.AppendInt(b, int64(r.IntN(64)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(1+r.IntN(254)), 10)
	b = append(b, " - - ["...)
	b = append(b, g.ts.access...)
	b = append(b, `] "`...)
	b = append(b, methods[r.IntN(len(methods))]...)
	b = append(b, ' ')
	b = append(b, paths[r.IntN(len(paths))]...)
	b = append(b, ` HTTP/1.1" `...)
	b = strconv.AppendInt(b, int64(statuses[r.IntN(len(statuses))]), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.IntN(60000)), 10)
	b = append(b, ` "-" "`...)
	b = append(b, agents[r.IntN(len(agents))]...)
	return append(b, `" `...)
}

// javaPrefix: "2026-11-21 10:00:00.123  INFO 1 --- [nio-8080-exec-7] c.e.orders.OrderService : ".
func (g *Generator) javaPrefix(b []byte) []byte {
	r := g.rng
	b = append(b, g.ts.java...)
	b = g.ts.appendFrac(b, 3)
	b = append(b, ' ')
	b = append(b, javaLevels[r.IntN(len(javaLevels))]...)
	b = append(b, " 1 --- ["...)
	th := javaThread[r.IntN(len(javaThread))]
	b = append(b, th...)
	if strings.HasSuffix(th, "-") {
		b = strconv.AppendInt(b, int64(1+r.IntN(16)), 10)
	}
	b = append(b, "] "...)
	b = append(b, javaClass[r.IntN(len(javaClass))]...)
	return append(b, " : "...)
}

// filler appends words and numbers to b until it is n bytes long.
func (g *Generator) filler(b []byte, n int) []byte {
	r := g.rng
	for len(b) < n {
		if r.IntN(6) == 0 {
			b = strconv.AppendInt(b, int64(r.IntN(1_000_000)), 10)
		} else {
			b = append(b, words[r.IntN(len(words))]...)
		}
		b = append(b, ' ')
	}
	return b[:n]
}

func (g *Generator) appendHex(b []byte, n int) []byte {
	for n > 0 {
		x := g.rng.Uint64()
		for i := 0; i < 16 && n > 0; i, n = i+1, n-1 {
			b = append(b, hexDigits[x&15])
			x >>= 4
		}
	}
	return b
}
