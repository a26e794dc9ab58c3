package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/internal/apptest"
)

// TestGatewaySurvivesKill9: the production binary's gateway is killed with
// SIGKILL, up to three times, while four clients send, and restarted on the
// same port. Each client resends a request until it is answered 200, as OTLP
// exporters do: two send lines with an Idempotency-Key, two OTLP protobuf
// without one (the ids then come from the body). Afterwards every record
// of every request is in the tenant's raw topic, and the copies a retry
// wrote have the ids of the first, so the indexer stores each record once.
func TestGatewaySurvivesKill9(t *testing.T) {
	c, admin := startCluster(t)
	addr := apptest.FreeAddr(t)
	gw := apptest.Start(t, apptest.Config{Args: []string{"gateway"}, Telemetry: true, Env: []string{
		"SLUICE_KAFKA_BROKERS=" + strings.Join(c.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"SLUICE_GATEWAY_ADDR=" + addr,
		"SLUICE_LOG_LEVEL=warn",
	}})
	ready := func() {
		t.Helper()
		if err := gw.WaitReady(context.Background(), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ready()

	const (
		clients  = 4
		requests = 100
		perReq   = 20
	)
	auth := basic("shop", "shop-secret")
	send := func(client, req int) (retries int) {
		var body []byte
		headers := map[string]string{"Authorization": auth}
		path := "/v1/lines"
		if client%2 == 0 {
			var b strings.Builder
			for l := range perReq {
				fmt.Fprintf(&b, "c%d r%d l%d\n", client, req, l)
			}
			body = []byte(b.String())
			headers["Content-Type"] = "text/plain"
			headers["Idempotency-Key"] = fmt.Sprintf("c%d-r%d", client, req)
		} else {
			recs := otlpLines(perReq, "")
			for l, r := range recs {
				r.Body = str(fmt.Sprintf("c%d r%d l%d", client, req, l))
			}
			body, _ = proto.Marshal(otlpRequest(nil, recs...))
			headers["Content-Type"] = mediaProtobuf
			path = "/v1/logs"
		}
		deadline := time.Now().Add(90 * time.Second)
		for ; ; retries++ {
			if time.Now().After(deadline) {
				t.Errorf("client %d request %d: no 200 within 90s", client, req)
				return retries
			}
			r, err := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return retries
			}
			for k, v := range headers {
				r.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(r)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return retries
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		retried int
		done    = make(chan struct{})
	)
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range requests {
				n := send(cl, req)
				mu.Lock()
				retried += n
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // the run lasts across the kills
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	kills := 0
kill:
	for kills < 3 {
		select {
		case <-done:
			break kill // on a slow machine the clients may finish first
		case <-time.After(250 * time.Millisecond):
		}
		if err := gw.Restart(); err != nil { // SIGKILL, then a new life
			t.Fatal(err)
		}
		kills++
		ready()
	}
	<-done
	if t.Failed() {
		return
	}

	e := &testEnv{c: c, admin: admin}
	recs := e.readRaw(t, "shop")
	ids := map[string]string{} // log -> id
	dups := 0
	for _, r := range recs {
		if id, ok := ids[r.Log]; ok {
			dups++
			if id != r.ID {
				t.Errorf("%q written with ids %s and %s", r.Log, id, r.ID)
			}
			continue
		}
		ids[r.Log] = r.ID
	}
	missing := 0
	for cl := range clients {
		for req := range requests {
			for l := range perReq {
				if _, ok := ids[fmt.Sprintf("c%d r%d l%d", cl, req, l)]; !ok {
					missing++
				}
			}
		}
	}
	t.Logf("%d kills, %d retried requests; %d records in the topic, %d distinct, %d copies of a retry", kills, retried, len(recs), len(ids), dups)
	if want := clients * requests * perReq; missing > 0 || len(ids) != want {
		t.Errorf("%d of %d records missing; %d distinct records, want %d", missing, want, len(ids), want)
	}
	if kills == 0 || retried == 0 {
		t.Errorf("%d kills, %d requests retried: the kills interrupted nothing", kills, retried)
	}
}
