package main

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// closedAddr returns a local address nothing listens on: connecting to it
// is refused at once.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns a local address that accepts connections and never
// answers: a server that hangs.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// kafkaCommands are the command lines that talk to Kafka, each able to
// reach it (stdin and files are there).
func kafkaCommands(t *testing.T) [][]string {
	doc := writePipeline(t, "tenant: shop\nversion: 1\nsteps:\n  - json: {}\n")
	return [][]string{
		{"tail", "--tenant", "shop"},
		{"produce", "--tenant", "shop"},
		{"pipeline", "apply", doc},
		{"pipeline", "get", "shop"},
		{"pipeline", "list"},
		{"pipeline", "delete", "shop"},
		{"tenant", "create", "shop"},
		{"tenant", "list"},
		{"tenant", "delete", "--yes", "shop"},
	}
}

// TestKafkaUnreachable: every command that talks to Kafka says that it
// cannot reach it, and where, and exits 1, when nothing listens there.
func TestKafkaUnreachable(t *testing.T) {
	addr := closedAddr(t)
	t.Setenv("SLUICE_KAFKA_BROKERS", addr)
	setStdin(t, "a line\n")
	for _, args := range kafkaCommands(t) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		stdout, stderr, code := sluice(t, ctx, args...)
		cancel()
		if code != 1 || !strings.HasPrefix(stderr, "sluice: ") || !strings.Contains(stderr, "cannot reach Kafka at "+addr+": ") ||
			!strings.Contains(stderr, "connection refused") || !strings.Contains(stderr, "(check SLUICE_KAFKA_BROKERS;") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// TestKafkaTimeout: a broker that accepts connections and never answers
// is given up on after --timeout, with a message saying so.
func TestKafkaTimeout(t *testing.T) {
	addr := silentAddr(t)
	t.Setenv("SLUICE_KAFKA_BROKERS", addr)
	setStdin(t, "a line\n")
	for _, args := range kafkaCommands(t) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_, stderr, code := sluice(t, ctx, append(args, "--timeout", "200ms")...)
		cancel()
		if code != 1 || !strings.Contains(stderr, "Kafka at "+addr+" did not answer within 200ms (--timeout)") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestKafkaWrongPassword: a password Kafka refuses is reported as such,
// naming the user and the settings to check, at once.
func TestKafkaWrongPassword(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.Topics(1, "logs.raw.shop", "logs.parsed.shop"))
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("SLUICE_KAFKA_SASL_USERNAME", "admin")
	t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", "not-the-password")
	setStdin(t, "a line\n")
	for _, args := range kafkaCommands(t) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_, stderr, code := sluice(t, ctx, args...)
		cancel()
		if code != 1 || !strings.Contains(stderr, `while authenticating user "admin" with SCRAM-SHA-512: the password is likely wrong (check SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD)`) {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestUnknownTenantAndDataset: tail and produce check the topic first: a
// tenant or dataset that does not exist is an error naming the topic, the
// command that makes it, and a close name, instead of silence or Kafka's
// UNKNOWN_TOPIC_OR_PARTITION. The pipeline commands name the command that
// makes the tenant too.
func TestUnknownTenantAndDataset(t *testing.T) {
	_, cl := tenantCluster(t)
	kafkatest.CreateTopics(t, cl, 1, "logs.parsed.shop.audit", "logs.parsed.shop.errors")
	setStdin(t, "a line\n")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "--tenant", "shpo"}, "sluice: tail: tenant shpo has no topic logs.raw.shpo (did you mean tenant shop?); make it with: sluice tenant create shpo\n"},
		{[]string{"tail", "--tenant", "shop-web", "--errors"}, "sluice: tail: tenant shop-web has no topic logs.raw.shop-web; make it with: sluice tenant create shop-web\n"},
		{[]string{"produce", "--tenant", "shop-web"}, "sluice: produce: tenant shop-web has no topic logs.raw.shop-web; make it with: sluice tenant create shop-web\n"},
		{[]string{"pipeline", "get", "shop-web"}, "sluice: get shop-web: no pipeline stored: tenant shop-web: the tenant's config topic does not exist (logs.config.shop-web); make it with: sluice tenant create shop-web\n"},
		{[]string{"pipeline", "delete", "shop-web"}, "sluice: tenant shop-web: the tenant's config topic does not exist (logs.config.shop-web); make it with: sluice tenant create shop-web\n"},
		{[]string{"tail", "--tenant", "shop", "--dataset", "audti"}, "sluice: tail: tenant shop has no dataset topic logs.parsed.shop.audti (did you mean --dataset audit?); its datasets: audit, errors; " +
			"a pipeline that routes to dataset audti makes it when applied, or make it with: sluice tenant create --datasets audti shop\n"},
		// --stream, the deprecated name of --dataset, warns.
		{[]string{"tail", "--tenant", "shop", "--stream", "audti"}, "warning: --stream is deprecated: use --dataset\n" +
			"sluice: tail: tenant shop has no dataset topic logs.parsed.shop.audti (did you mean --dataset audit?); its datasets: audit, errors; " +
			"a pipeline that routes to dataset audti makes it when applied, or make it with: sluice tenant create --datasets audti shop\n"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		stdout, stderr, code := sluice(t, ctx, tt.args...)
		cancel()
		if code != 1 || stderr != tt.want || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

// TestTailWaits: tail from the end says on stderr that it waits, and
// prints a record written after that line; from the beginning it says
// nothing.
func TestTailWaits(t *testing.T) {
	_, cl := tenantCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	produce := func(log string) {
		t.Helper()
		r := schemas.Record{ID: log, Timestamp: time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC), Log: log}
		v, err := schemas.AppendSingleObject(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "logs.parsed.shop", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("written before")

	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"tail", "--tenant", "shop", "-n", "1"}, stdout, stderr) }()
	if !stderr.waitFor(ctx, "waiting for records in logs.parsed.shop… (Ctrl-C to stop)\n") {
		t.Fatalf("no waiting line: %q", stderr.String())
	}
	produce("written after")
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	if got := stdout.String(); got != "2026-11-21T10:30:00.000Z  -  written after\n" {
		t.Errorf("tail printed %q", got)
	}

	out, errOut, code := sluice(t, ctx, "tail", "--tenant", "shop", "--from-beginning", "-n", "1")
	if code != 0 || out != "2026-11-21T10:30:00.000Z  -  written before\n" || errOut != "" {
		t.Errorf("tail --from-beginning: exit %d, %q, stderr %q", code, out, errOut)
	}

	// In a group, what was printed is committed.
	out, errOut, code = sluice(t, ctx, "tail", "--tenant", "shop", "--group", "shop.view", "--from-beginning", "-n", "2")
	if code != 0 || out != "2026-11-21T10:30:00.000Z  -  written before\n2026-11-21T10:30:00.000Z  -  written after\n" || errOut != "" {
		t.Errorf("tail --group: exit %d, %q, stderr %q", code, out, errOut)
	}
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, "shop.view")
	if err != nil || committed.Error() != nil {
		t.Fatalf("committed offsets: %v %v", err, committed.Error())
	}
	total := int64(0)
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 2 {
		t.Errorf("group shop.view committed %d records, want 2", total)
	}
}

// TestTenantDeleteUnknown: deleting a tenant that does not exist is an
// error naming it, and deletes nothing.
func TestTenantDeleteUnknown(t *testing.T) {
	_, cl := tenantCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, stderr, code := sluice(t, ctx, "tenant", "delete", "--yes", "nosuch")
	if code != 1 || stderr != "sluice: tenant delete: tenant nosuch does not exist (no topic logs.*.nosuch, no Kafka user nosuch): nothing deleted (sluice tenant list shows the tenants)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = sluice(t, ctx, "tenant", "delete", "--yes", "shpo")
	if code != 1 || !strings.Contains(stderr, "tenant shpo does not exist") || !strings.Contains(stderr, "did you mean shop?") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil || len(topics) != 3 {
		t.Errorf("topics after refused deletes: %v %v", topics.Names(), err)
	}
	stdout, stderr, code := sluice(t, ctx, "tenant", "delete", "--yes", "shop")
	if code != 0 || stdout != "tenant shop deleted\n" {
		t.Errorf("delete shop: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestTenantCreateWarnsUnenforcedACLs: on a Kafka that lets a connection
// without credentials set ACLs (the dev stack's), tenant create warns that
// they protect nothing.
func TestTenantCreateWarnsUnenforcedACLs(t *testing.T) {
	tenantCluster(t) // no SASL, no authorizer: as in sluice dev
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stdout, stderr, code := sluice(t, ctx, "tenant", "create", "--no-user", "acme")
	if code != 0 || !strings.HasPrefix(stdout, "tenant acme ready") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`^warning: ACLs are not enforced here: .*sluice dev.*: tenant acme's topics are not protected from other clients\n$`).MatchString(stderr) {
		t.Errorf("stderr %q", stderr)
	}
	if !anonymous(kafka.Config{SASLMechanism: "none"}) || anonymous(kafka.Config{SASLMechanism: "SCRAM-SHA-512"}) ||
		anonymous(kafka.Config{TLSCertFile: "client.pem"}) {
		t.Error("anonymous is wrong")
	}
}
