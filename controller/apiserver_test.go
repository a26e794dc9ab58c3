//go:build apiserver

// The API server test runs the sluice-controller binary against a real
// etcd and kube-apiserver started by envtest, with a kfake broker in the
// test process. It is behind the build tag apiserver because it needs
// those binaries, which take minutes to build cold: make test-apiserver
// builds them (controller/hack/apiserver/build.sh) and runs it.

package controller

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
)

// howToGetAPIServer is the remedy named whenever the binaries are missing:
// the test fails rather than skips, so that a run that checked nothing
// never looks green.
const howToGetAPIServer = "run `make test-apiserver`, which builds etcd and kube-apiserver from the Go module proxy " +
	"(controller/hack/apiserver/build.sh; minutes the first time, cached after) and runs this test with KUBEBUILDER_ASSETS set"

// patience is how long a condition may take to come true. Generous: the
// machine may be busy, and a condition that holds returns at once.
const patience = 90 * time.Second

// leasePatience also covers the lease of a killed leader running out
// (controller-runtime's LeaseDuration, 15s) before another takes it.
const leasePatience = 3 * time.Minute

// TestAPIServer: the sluice-controller binary, against a real API server
// and a kfake broker with SASL/SCRAM and ACLs, provisions a Tenant
// (topics, SCRAM user, ACLs, credentials Secret, namespace labels),
// applies a Pipeline and keeps its version in force when a broken one
// follows, refuses a Pipeline in another tenant's namespace, picks up after
// being killed (the lease is taken again, a change made meanwhile is
// applied) and runs its finalizers on deletion. It also holds what only a
// real API server shows: the CRDs' validation rules and printer columns.
func TestAPIServer(t *testing.T) {
	ctx := t.Context()
	assets := apiserverAssets(t)
	// envtest logs through controller-runtime's logger; without one it
	// complains after 30 seconds.
	ctrl.SetLogger(logr.Discard())
	// Built first: a build error is found before a control plane waits.
	bin := buildController(t)

	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join("..", "deploy", "helm", "sluice", "crds")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	started := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting etcd and kube-apiserver from %s: %v\n(KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true shows their output; if the binaries are broken or stale, %s)", assets, err, howToGetAPIServer)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	t.Logf("etcd and kube-apiserver up in %s, CRDs installed", time.Since(started).Round(time.Millisecond))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	k8s, err := client.New(cfg, client.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	cluster, adm := testKafka(t)
	admin := asUser(t, cluster, "admin", "admin-secret")
	topics := kafka.Topics{Prefix: "logs"}

	const leaseNS = "sluice-system"
	for _, ns := range []string{leaseNS, "shop", "web"} {
		mustCreate(t, k8s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	ctl := &controllerRun{t: t, bin: bin, env: []string{
		"KUBECONFIG=" + kubeconfig,
		"SLUICE_KAFKA_BROKERS=" + strings.Join(cluster.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"SLUICE_KAFKA_SASL_USERNAME=admin",
		"SLUICE_KAFKA_SASL_PASSWORD=admin-secret",
		"SLUICE_TOPIC_PREFIX=" + topics.Prefix,
		"SLUICE_CONTROLLER_LEADER_ELECTION=true",
		"SLUICE_CONTROLLER_NAMESPACE=" + leaseNS,
		"SLUICE_CONTROLLER_RETRY=1s",
		// Short, so that a router's report shows in the status within
		// the test's patience.
		"SLUICE_CONTROLLER_STATUS_REFRESH=2s",
	}}
	first := ctl.start()
	holder := waitLeader(t, k8s, leaseNS, "")
	t.Logf("%s leads as %s", first.name, holder)

	// Two Tenants: shop named by its resource, web by spec.id. One of
	// shop's namespaces does not exist yet.
	partitions := int32(2)
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{
		Namespaces:        []string{"shop", "shop-jobs"},
		Topics:            v1alpha1.TopicsSpec{Partitions: &partitions},
		Datasets:          []string{"audit"},
		CredentialsSecret: &v1alpha1.SecretReference{Namespace: "shop", Name: "sluice-kafka"},
		DeleteData:        true,
	}}
	web := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web-team"}, Spec: v1alpha1.TenantSpec{
		ID: "web", Namespaces: []string{"web"},
	}}
	mustCreate(t, k8s, shop)
	mustCreate(t, k8s, web)
	for _, name := range []string{"shop", "web-team"} {
		eventually(t, patience, "Tenant "+name+" Ready", func() error {
			var tn v1alpha1.Tenant
			if err := k8s.Get(ctx, types.NamespacedName{Name: name}, &tn); err != nil {
				return err
			}
			c := meta.FindStatusCondition(tn.Status.Conditions, ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonProvisioned || tn.Status.ObservedGeneration != tn.Generation {
				return fmt.Errorf("status %+v", tn.Status)
			}
			if !slices.Contains(tn.Finalizers, Finalizer) {
				return fmt.Errorf("no finalizer %s: %v", Finalizer, tn.Finalizers)
			}
			return nil
		})
	}

	t.Log("Tenants shop and web-team are Ready")

	// shop's topics, user, ACLs and Secret, as the controller made them.
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(append(kafka.TenantTopics(topics, "shop"), kafka.TenantStateTopics(topics, "shop")...), topics.ParsedDataset("shop", "audit")) {
		d, ok := listed[want]
		if !ok {
			t.Fatalf("topic %s missing; have %v", want, listed.Names())
		}
		if len(d.Partitions) != int(partitions) && !slices.Contains(kafka.TenantStateTopics(topics, "shop"), want) {
			t.Errorf("topic %s has %d partitions, want %d", want, len(d.Partitions), partitions)
		}
	}
	if !listed.Has(topics.Raw("web")) {
		t.Errorf("tenant web (spec.id of Tenant web-team) has no raw topic; have %v", listed.Names())
	}
	if n := scramCredentials(t, adm, "shop"); n == 0 {
		t.Fatal("no SCRAM credentials for user shop")
	}
	if n := aclsOf(t, adm, "shop"); n < len(kafka.TenantACLRules(topics, "shop")) {
		t.Fatalf("user shop has %d ACLs, want at least %d", n, len(kafka.TenantACLRules(topics, "shop")))
	}
	var secret corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "sluice-kafka"}, &secret); err != nil {
		t.Fatalf("credentials Secret: %v", err)
	}
	if string(secret.Data["username"]) != "shop" || len(secret.Data["password"]) < minPasswordLength || secret.Labels[managedByLabel] != managedBy {
		t.Fatalf("credentials Secret holds user %q, a password of %d bytes, labels %v", secret.Data["username"], len(secret.Data["password"]), secret.Labels)
	}
	// The credentials work, and the ACLs hold the user to its own topics.
	user := asUser(t, cluster, "shop", string(secret.Data["password"]))
	if err := user.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw("shop"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("user shop cannot write its raw topic: %v", err)
	}
	if err := user.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw("web"), Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("user shop wrote tenant web's raw topic")
	}

	// Namespaces are labelled for the shippers, one created later too.
	waitLabel(t, k8s, "shop", "shop")
	waitLabel(t, k8s, "web", "web")
	mustCreate(t, k8s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-jobs"}})
	waitLabel(t, k8s, "shop-jobs", "shop")

	t.Log("namespaces labelled, one created after its Tenant too")

	// What the fake client cannot show: the API server enforces the
	// CRDs' schemas and CEL rules.
	var cur v1alpha1.Tenant
	wantInvalid(t, change(t, k8s, "", "web-team", &cur, func() { cur.Spec.ID = "web2" }), "changing spec.id", "cannot change")
	wantInvalid(t, change(t, k8s, "", "web-team", &cur, func() { cur.Spec.ID = "" }), "removing spec.id", "cannot change")
	wantInvalid(t, change(t, k8s, "", "shop", &cur, func() { cur.Spec.ID = "other" }), "setting spec.id on a Tenant named by its name", "cannot change")
	zero := int32(0)
	wantInvalid(t, k8s.Create(ctx, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "bad-partitions"},
		Spec: v1alpha1.TenantSpec{Topics: v1alpha1.TopicsSpec{Partitions: &zero}}}), "spec.topics.partitions 0", "spec.topics.partitions")
	wantInvalid(t, k8s.Create(ctx, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "bad-id"},
		Spec: v1alpha1.TenantSpec{ID: "Not_An_ID"}}), "spec.id Not_An_ID", "spec.id")
	wantInvalid(t, k8s.Create(ctx, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "both-names"},
		Spec: v1alpha1.TenantSpec{Datasets: []string{"audit"}, Streams: []string{"audit"}}}), "spec.datasets and spec.streams", "give datasets only")
	wantInvalid(t, k8s.Create(ctx, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "empty"}}),
		"an empty spec.document", "spec.document")

	// A Pipeline in shop's namespace: validated, its test run, stored in
	// shop's config topic.
	doc1 := pipelineDoc("shop", 1, "warn")
	mustCreate(t, k8s, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "main"}, Spec: v1alpha1.PipelineSpec{Document: doc1}})
	p := waitPipeline(t, k8s, "shop", "main", "applied", func(p *v1alpha1.Pipeline) error {
		return wantConditions(p, metav1.ConditionTrue, ReasonValid, metav1.ConditionTrue, ReasonApplied, metav1.ConditionTrue)
	})
	if p.Status.AppliedVersion != 1 || p.Status.Tenant != "shop" || len(p.Status.Problems) != 0 || !slices.Contains(p.Finalizers, PipelineFinalizer) {
		t.Fatalf("applied v1: status %+v, finalizers %v", p.Status, p.Finalizers)
	}
	if sp := storedPipeline(t, admin, topics, "shop"); sp == nil || sp.Version != 1 || string(sp.Source) != doc1 {
		t.Fatalf("stored in the config topic: %+v, want version 1 with the document", sp)
	}

	t.Log("Pipeline shop/main v1 applied and stored")

	// A router's report reaches the status, and the Routers column.
	report, _ := json.Marshal(router.RouterStatus{Router: "router-0", Tenant: "shop", Stored: 1, Applied: 1})
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topics.TenantStatus("shop"), Key: []byte(router.StatusKey("shop", "router-0")), Value: report}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, k8s, "shop", "main", "routers reported", func(p *v1alpha1.Pipeline) error {
		if p.Status.RoutersInForce != "1/1" {
			return fmt.Errorf("routersInForce %q, routers %+v", p.Status.RoutersInForce, p.Status.Routers)
		}
		return nil
	})

	// The printer columns, as kubectl get would show them.
	wantTable(t, clientset, "/apis/sluice.io/v1alpha1/tenants",
		[]string{"Name", "ID", "Ready", "Reason", "Age"},
		map[string][]string{"shop": {"shop", "shop", "True", "Provisioned"}, "web-team": {"web-team", "web", "True", "Provisioned"}})
	wantTable(t, clientset, "/apis/sluice.io/v1alpha1/namespaces/shop/pipelines",
		[]string{"Name", "Tenant", "Version", "Routers", "Dead letters/min", "Ready", "Reason", "Age"},
		map[string][]string{"main": {"main", "shop", "1", "1/1", "0.0", "True", "Applied"}})

	t.Log("printer columns checked")

	// Version 2 fails its test: refused with the problem's position; v1
	// stays in force.
	mustChange(t, k8s, "shop", "main", p, func() { p.Spec.Document = pipelineDoc("shop", 2, "error") })
	p = waitPipeline(t, k8s, "shop", "main", "broken v2 refused", func(p *v1alpha1.Pipeline) error {
		return wantConditions(p, metav1.ConditionFalse, ReasonInvalidDocument, metav1.ConditionFalse, ReasonNotApplied, metav1.ConditionFalse)
	})
	if len(p.Status.Problems) == 0 || !strings.Contains(p.Status.Problems[0], "line 6, column 5") {
		t.Errorf("problems of the broken v2: %q, want the line and column of the failing test", p.Status.Problems)
	}
	if p.Status.AppliedVersion != 1 {
		t.Errorf("appliedVersion %d after a broken v2, want 1", p.Status.AppliedVersion)
	}
	if sp := storedPipeline(t, admin, topics, "shop"); sp == nil || sp.Version != 1 || string(sp.Source) != doc1 {
		t.Fatalf("stored after a broken v2: %+v, want v1 kept", sp)
	}

	// A Pipeline naming shop in web's namespace is refused.
	mustCreate(t, k8s, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "evil"},
		Spec: v1alpha1.PipelineSpec{Document: pipelineDoc("shop", 9, "warn")}})
	waitPipeline(t, k8s, "web", "evil", "refused as another tenant's", func(p *v1alpha1.Pipeline) error {
		return wantConditions(p, metav1.ConditionFalse, ReasonWrongTenant, metav1.ConditionFalse, ReasonNotApplied, metav1.ConditionFalse)
	})
	if sp := storedPipeline(t, admin, topics, "shop"); sp == nil || sp.Version != 1 {
		t.Fatalf("stored after web's Pipeline naming shop: %+v, want v1 kept", sp)
	}

	t.Log("broken v2 and web/evil refused, v1 kept")

	// Killed without a chance to let go of its lease; a fixed v3 comes
	// while no controller runs, and the next one applies it once it has
	// taken the lease over.
	first.kill()
	killed := time.Now()
	doc3 := pipelineDoc("shop", 3, "warn")
	mustChange(t, k8s, "shop", "main", p, func() { p.Spec.Document = doc3 })
	second := ctl.start()
	holder = waitLeader(t, k8s, leaseNS, holder)
	t.Logf("%s killed; %s leads as %s %s later", first.name, second.name, holder, time.Since(killed).Round(time.Millisecond))
	p = waitPipeline(t, k8s, "shop", "main", "v3 applied after the restart", func(p *v1alpha1.Pipeline) error {
		if err := wantConditions(p, metav1.ConditionTrue, ReasonValid, metav1.ConditionTrue, ReasonApplied, metav1.ConditionTrue); err != nil {
			return err
		}
		if p.Status.AppliedVersion != 3 {
			return fmt.Errorf("appliedVersion %d", p.Status.AppliedVersion)
		}
		return nil
	})
	if len(p.Status.Problems) != 0 {
		t.Errorf("problems left after v3 applied: %q", p.Status.Problems)
	}
	if sp := storedPipeline(t, admin, topics, "shop"); sp == nil || sp.Version != 3 || string(sp.Source) != doc3 {
		t.Fatalf("stored after the restart: %+v, want v3", sp)
	}
	second.wantMetric(`sluice_controller_reconciles_total{kind="pipeline",result="requeued"}`)

	t.Log("v3, made while no controller ran, applied by the next")

	// Deleting: the Pipelines go (shop back on pass-through), then the
	// Tenant with its topics, user and ACLs, and its namespace labels.
	for _, key := range []types.NamespacedName{{Namespace: "web", Name: "evil"}, {Namespace: "shop", Name: "main"}} {
		mustDelete(t, k8s, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		waitGone(t, k8s, key, &v1alpha1.Pipeline{})
	}
	if sp := storedPipeline(t, admin, topics, "shop"); sp != nil && len(sp.Source) != 0 {
		t.Fatalf("a pipeline is still stored for shop after its Pipeline was deleted: %s", sp.Source)
	}
	mustDelete(t, k8s, &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	waitGone(t, k8s, types.NamespacedName{Name: "shop"}, &v1alpha1.Tenant{})
	listed, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range listed.Names() {
		if tn, _, _, ok := topics.TenantOf(name); ok && tn == "shop" {
			t.Errorf("topic %s is left after Tenant shop (deleteData: true) was deleted", name)
		}
	}
	if !listed.Has(topics.Raw("web")) {
		t.Error("tenant web's raw topic went with Tenant shop")
	}
	if n := scramCredentials(t, adm, "shop"); n != 0 {
		t.Errorf("user shop still has %d SCRAM credentials", n)
	}
	if n := aclsOf(t, adm, "shop"); n != 0 {
		t.Errorf("user shop still has %d ACLs", n)
	}
	for _, ns := range []string{"shop", "shop-jobs"} {
		waitLabel(t, k8s, ns, "")
	}
	waitLabel(t, k8s, "web", "web")

	t.Log("Pipelines and Tenant shop deleted, their finalizers run")

	// Stopped as Kubernetes stops a pod: it exits cleanly.
	second.stop()
}

// apiserverAssets returns the directory of the etcd and kube-apiserver
// binaries, KUBEBUILDER_ASSETS, failing the test when they are not there.
func apiserverAssets(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		t.Fatalf("KUBEBUILDER_ASSETS is not set; it names the directory of the etcd and kube-apiserver binaries: %s", howToGetAPIServer)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("no executable %s in KUBEBUILDER_ASSETS=%s (%v): %s", name, dir, err, howToGetAPIServer)
		}
	}
	return dir
}

// buildController builds the sluice-controller binary as it ships: the
// test runs the process, not the package.
func buildController(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice-controller")
	// go test puts its own Go first in PATH. No VCS stamp: the test needs
	// none, and it fails the build in a checkout git will not read.
	out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "./cmd/sluice-controller").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/sluice-controller: %v\n%s", err, out)
	}
	return bin
}

// controllerRun starts sluice-controller processes with the settings in
// env, each logging to a file of its own that the test prints if it fails.
type controllerRun struct {
	t   *testing.T
	bin string
	env []string
	n   int
}

type controllerProc struct {
	t         *testing.T
	name      string
	cmd       *exec.Cmd
	telemetry string
	done      chan struct{}
	err       error // of Wait, once done is closed
}

func (r *controllerRun) start() *controllerProc {
	t := r.t
	t.Helper()
	r.n++
	name := fmt.Sprintf("sluice-controller #%d", r.n)
	logPath := filepath.Join(t.TempDir(), "controller.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin)
	// The test's own environment, less what would point the controller
	// elsewhere (a SLUICE_* setting, another cluster).
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "SLUICE_") && k != "KUBECONFIG" && !strings.HasPrefix(k, "KUBERNETES_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, r.env...)
	// A port of its own choosing, read back from its log (text, for
	// listeningOn): no port is reserved for it meanwhile.
	cmd.Env = append(cmd.Env, "SLUICE_TELEMETRY_ADDR=127.0.0.1:0", "SLUICE_LOG_FORMAT=text")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &controllerProc{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		// Before the broker and the API server go (cleanups run last
		// first), so that it never logs their absence.
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s:\n%s", name, lastLines(string(b), 200))
		}
	})
	eventually(t, patience, name+" serving /readyz", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", name, p.err)
		default:
		}
		if p.telemetry == "" {
			b, err := os.ReadFile(logPath)
			if err != nil {
				return err
			}
			if p.telemetry = listeningOn(string(b)); p.telemetry == "" {
				return errors.New("no telemetry address logged yet")
			}
		}
		return httpGet(p.telemetry, "/readyz", nil)
	})
	return p
}

// kill ends the process with SIGKILL: no deferred call runs, the lease is
// left as it was.
func (p *controllerProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("killing %s: %v", p.name, err)
	}
	<-p.done
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		p.t.Fatalf("%s ended with %v, not by SIGKILL", p.name, p.err)
	}
}

// stop sends SIGTERM, as the kubelet does, and wants a clean exit.
func (p *controllerProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("stopping %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(patience):
		p.t.Fatalf("%s still runs %s after SIGTERM", p.name, patience)
	}
	if p.err != nil {
		p.t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, p.err)
	}
}

// wantMetric wants a sample of series with a positive value on /metrics.
func (p *controllerProc) wantMetric(series string) {
	p.t.Helper()
	eventually(p.t, patience, p.name+" /metrics has "+series, func() error {
		var body string
		if err := httpGet(p.telemetry, "/metrics", &body); err != nil {
			return err
		}
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok && v != "0" {
				return nil
			}
		}
		return errors.New("no such sample, or 0")
	})
}

func httpGet(addr, path string, body *string) error {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if body != nil {
		*body = string(b)
	}
	return nil
}

// listeningOn returns the address in the telemetry server's "listening"
// log line, "" before that line.
func listeningOn(log string) string {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="telemetry server listening"`) {
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if addr, ok := strings.CutPrefix(field, "addr="); ok {
				return addr
			}
		}
	}
	return ""
}

func lastLines(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("... %d lines before", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// eventually waits until check returns nil, failing the test with the
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLeader waits until the controller's Lease has a holder other than
// previous, and returns it.
func waitLeader(t *testing.T, k8s client.Client, ns, previous string) string {
	t.Helper()
	var holder string
	eventually(t, leasePatience, "a leader other than "+strconv.Quote(previous), func() error {
		var l coordinationv1.Lease
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "sluice-controller"}, &l); err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || *l.Spec.HolderIdentity == previous {
			return fmt.Errorf("lease %+v", l.Spec)
		}
		holder = *l.Spec.HolderIdentity
		return nil
	})
	return holder
}

// waitLabel waits until namespace ns has the tenant label want ("" for
// none).
func waitLabel(t *testing.T, k8s client.Client, ns, want string) {
	t.Helper()
	eventually(t, patience, fmt.Sprintf("namespace %s labelled %s=%q", ns, TenantLabel, want), func() error {
		var n corev1.Namespace
		if err := k8s.Get(t.Context(), types.NamespacedName{Name: ns}, &n); err != nil {
			return err
		}
		if got, ok := n.Labels[TenantLabel]; got != want || ok != (want != "") {
			return fmt.Errorf("labels %v", n.Labels)
		}
		return nil
	})
}

// waitPipeline waits until the Pipeline's status is of its current
// generation and check accepts it.
func waitPipeline(t *testing.T, k8s client.Client, ns, name, what string, check func(*v1alpha1.Pipeline) error) *v1alpha1.Pipeline {
	t.Helper()
	var p v1alpha1.Pipeline
	eventually(t, patience, fmt.Sprintf("Pipeline %s/%s %s", ns, name, what), func() error {
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("observedGeneration %d of generation %d", p.Status.ObservedGeneration, p.Generation)
		}
		if err := check(&p); err != nil {
			return fmt.Errorf("%w; status %+v", err, p.Status)
		}
		return nil
	})
	return &p
}

// wantConditions checks a Pipeline's Validated, Applied and Ready
// conditions.
func wantConditions(p *v1alpha1.Pipeline, validated metav1.ConditionStatus, validReason string, applied metav1.ConditionStatus, appliedReason string, ready metav1.ConditionStatus) error {
	for _, w := range []struct {
		typ    string
		status metav1.ConditionStatus
		reason string
	}{{ConditionValidated, validated, validReason}, {ConditionApplied, applied, appliedReason}, {ConditionReady, ready, ""}} {
		c := meta.FindStatusCondition(p.Status.Conditions, w.typ)
		if c == nil || c.Status != w.status || (w.reason != "" && c.Reason != w.reason) || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("%s is %+v, want %s %s", w.typ, c, w.status, w.reason)
		}
	}
	return nil
}

func waitGone(t *testing.T, k8s client.Client, key types.NamespacedName, obj client.Object) {
	t.Helper()
	eventually(t, patience, fmt.Sprintf("%T %s gone", obj, key), func() error {
		err := k8s.Get(t.Context(), key, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there, deleted at %v with finalizers %v", obj.GetDeletionTimestamp(), obj.GetFinalizers())
	})
}

// wantInvalid wants err to be the API server's refusal of an invalid
// object, naming want.
func wantInvalid(t *testing.T, err error, what, want string) {
	t.Helper()
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: the API server answered %v; want it refused as invalid, naming %q", what, err, want)
	}
}

// wantTable fetches path in the Table format that kubectl get asks for,
// and checks the column names and, for each row named in rows, its cells
// but the last (the age).
func wantTable(t *testing.T, cs kubernetes.Interface, path string, columns []string, rows map[string][]string) {
	t.Helper()
	b, err := cs.Discovery().RESTClient().Get().AbsPath(path).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("GET %s as a Table: %v", path, err)
	}
	var table metav1.Table
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	if table.Kind != "Table" {
		t.Fatalf("GET %s: a %s, not a Table", path, table.Kind)
	}
	var got []string
	for _, c := range table.ColumnDefinitions {
		got = append(got, c.Name)
	}
	if !slices.Equal(got, columns) {
		t.Errorf("GET %s: columns %v, want %v", path, got, columns)
		return
	}
	seen := 0
	for _, row := range table.Rows {
		cells := make([]string, len(row.Cells))
		for i, c := range row.Cells {
			cells[i] = fmt.Sprint(c)
		}
		want, ok := rows[cells[0]]
		if !ok {
			continue
		}
		seen++
		if !slices.Equal(cells[:len(cells)-1], want) || cells[len(cells)-1] == "" {
			t.Errorf("GET %s: row %v, want %v and an age", path, cells, want)
		}
	}
	if seen != len(rows) {
		t.Errorf("GET %s: %d of the rows %v found", path, seen, rows)
	}
}

// storedPipeline reads the tenant's config topic as a router does.
func storedPipeline(t *testing.T, cl *kgo.Client, topics kafka.Topics, tenant string) *router.StoredPipeline {
	t.Helper()
	sp, err := router.ReadPipeline(t.Context(), cl, topics, tenant)
	if err != nil {
		t.Fatalf("reading %s's config topic: %v", tenant, err)
	}
	return sp
}

// scramCredentials counts the SCRAM credentials of user.
func scramCredentials(t *testing.T, adm *kadm.Client, user string) int {
	t.Helper()
	described, err := adm.DescribeUserSCRAMs(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[user]; d.Err == nil {
		return len(d.CredInfos)
	}
	return 0
}

// aclsOf counts the ACLs of a tenant's principal, on any resource.
func aclsOf(t *testing.T, adm *kadm.Client, tenant string) int {
	t.Helper()
	b := kadm.NewACLs().Allow(kafka.TenantPrincipal(tenant)).AllowHosts().AnyResource().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)
	results, err := adm.DescribeACLs(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("describe ACLs of %s: %v", tenant, r.Err)
		}
		n += len(r.Described)
	}
	return n
}

func mustCreate(t *testing.T, k8s client.Client, obj client.Object) {
	t.Helper()
	if err := k8s.Create(t.Context(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// change reads the object, applies mutate and writes it back, again on a
// conflict: the controller writes the status meanwhile.
func change(t *testing.T, k8s client.Client, ns, name string, obj client.Object, mutate func()) error {
	t.Helper()
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		mutate()
		return k8s.Update(t.Context(), obj)
	})
}

func mustChange(t *testing.T, k8s client.Client, ns, name string, obj client.Object, mutate func()) {
	t.Helper()
	if err := change(t, k8s, ns, name, obj, mutate); err != nil {
		t.Fatalf("update %T %s/%s: %v", obj, ns, name, err)
	}
}

func mustDelete(t *testing.T, k8s client.Client, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(t.Context(), obj); err != nil {
		t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
	}
}
