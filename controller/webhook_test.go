package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/testcerts"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/router"
)

// testManager stands for the manager in register and readyWhenServing.
type testManager struct {
	srv    webhook.Server
	scheme *runtime.Scheme
}

func (m testManager) GetWebhookServer() webhook.Server { return m.srv }
func (m testManager) GetScheme() *runtime.Scheme       { return m.scheme }

// writeServingCert writes a self-signed serving certificate for 127.0.0.1
// and its key to dir as tls.crt and tls.key.
func writeServingCert(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	p := testcerts.SelfSigned(t, "sluice-controller-webhook")
	// The key first: the certwatcher reloads on the certificate's write
	// too, and then finds a matching pair.
	for _, f := range []struct {
		name string
		data []byte
	}{{"tls.key", p.KeyPEM}, {"tls.crt", p.CertPEM}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p.Cert
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newPipeline(ns, name, doc string) *v1alpha1.Pipeline {
	return &v1alpha1.Pipeline{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Pipeline"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec:       v1alpha1.PipelineSpec{Document: doc},
	}
}

// reviewer posts AdmissionReview v1 requests to the webhook over HTTPS.
type reviewer struct {
	t    *testing.T
	url  string
	http *http.Client
	n    int
}

func (r *reviewer) review(op admissionv1.Operation, old, p *v1alpha1.Pipeline) *admissionv1.AdmissionResponse {
	r.t.Helper()
	r.n++
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID(fmt.Sprintf("review-%d", r.n)),
		Kind:      metav1.GroupVersionKind{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Kind: "Pipeline"},
		Resource:  metav1.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Resource: "pipelines"},
		Namespace: p.Namespace, Name: p.Name, Operation: op,
	}
	raw := func(o *v1alpha1.Pipeline) runtime.RawExtension {
		b, err := json.Marshal(o)
		if err != nil {
			r.t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	if op == admissionv1.Delete {
		req.OldObject = raw(p)
	} else {
		req.Object = raw(p)
	}
	if old != nil {
		req.OldObject = raw(old)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.http.Post(r.url, "application/json", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("POST %s: %s: %s", r.url, resp.Status, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil || out.Response == nil {
		r.t.Fatalf("response %s: %v", b, err)
	}
	if out.Response.UID != req.UID || out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		r.t.Fatalf("response to %s is %s %s for %s", req.UID, out.APIVersion, out.Kind, out.Response.UID)
	}
	return out.Response
}

// TestWebhook: the admission webhook, served over HTTPS as Run serves it
// (WebhookConfig's server, register, readyWhenServing), takes
// AdmissionReview v1 requests. It allows a valid Pipeline of the tenant
// that owns the namespace; it denies a document that fails validation
// (with the line and column of each problem, sluice pipeline validate's
// words) or its embedded tests, a Pipeline in a namespace of another
// tenant or of none, and a change of the document in force that keeps its
// version; each with the reason and message the reconciler records for the
// same Pipeline. It allows a metadata-only update of a refused Pipeline (a
// finalizer removed) and a deletion, counts every decision, and serves a
// renewed certificate without a restart.
func TestWebhook(t *testing.T) {
	scheme := testScheme(t)
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{Namespaces: []string{"shop"}}}
	web := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.TenantSpec{Namespaces: []string{"web"}}}
	// Another Pipeline of shop, applied: a new one is allowed with a warning.
	other := newPipeline("shop", "other", pipelineDoc("shop", 1, "warn"))
	other.Status.Tenant = "shop"
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(shop, web, other).
		WithStatusSubresource(&v1alpha1.Tenant{}, &v1alpha1.Pipeline{}).Build()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)

	dir := t.TempDir()
	first := writeServingCert(t, dir)
	cfg := WebhookConfig{Port: freePort(t), CertDir: dir}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := cfg.server()
	mgr := testManager{srv: srv, scheme: scheme}
	cfg.register(mgr, &PipelineValidator{Client: cl, Log: discard, Decisions: m.admissions})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	ready := make(chan bool, 1)
	cfg.readyWhenServing(ctx, mgr, func(b bool) { ready <- b }, discard)
	select {
	case b := <-ready:
		if !b {
			t.Fatal("reported not ready")
		}
	case err := <-stopped:
		t.Fatalf("webhook server stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the webhook server was not ready within 20s")
	}

	roots := x509.NewCertPool()
	roots.AddCert(first)
	rv := &reviewer{t: t, url: fmt.Sprintf("https://127.0.0.1:%d%s", cfg.Port, PipelineWebhookPath),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}}

	// What the reconciler records of the same Pipeline: it is refused
	// before Kafka is needed, so no Kafka client is given.
	rec := &PipelineReconciler{Client: cl, Log: discard, Retry: time.Second}
	reconciled := func(p *v1alpha1.Pipeline) *v1alpha1.Pipeline {
		t.Helper()
		p = p.DeepCopy()
		p.ResourceVersion = ""
		if err := cl.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if _, err := rec.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
			t.Fatalf("reconcile %s: %v", p.Name, err)
		}
		var got v1alpha1.Pipeline
		if err := cl.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	firstLine := regexp.MustCompile(`^([A-Za-z]+): (.*?)(: \d+ problem\(s\):)?$`)
	denied := func(name string, resp *admissionv1.AdmissionResponse, reason string, want ...string) string {
		t.Helper()
		if resp.Allowed || resp.Result == nil {
			t.Fatalf("%s: allowed, want denied (%s)", name, reason)
		}
		msg := resp.Result.Message
		if resp.Result.Code != http.StatusForbidden || !strings.HasPrefix(msg, reason+": ") {
			t.Errorf("%s: code %d, message %q; want 403 and a message starting %q", name, resp.Result.Code, msg, reason+": ")
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q does not contain %q", name, msg, w)
			}
		}
		return msg
	}
	// sameAsReconciler checks that the reconciler refuses p with the
	// reason, words and problems of the webhook's message.
	sameAsReconciler := func(name string, p *v1alpha1.Pipeline, msg string) {
		t.Helper()
		got := reconciled(p)
		c := meta.FindStatusCondition(got.Status.Conditions, ConditionValidated)
		head, _, _ := strings.Cut(msg, "\n")
		parts := firstLine.FindStringSubmatch(head)
		if c == nil || parts == nil || c.Status != metav1.ConditionFalse || c.Reason != parts[1] || !strings.Contains(c.Message, parts[2]) {
			t.Fatalf("%s: the reconciler records Validated %+v; the webhook says %q", name, c, msg)
		}
		for _, pr := range got.Status.Problems {
			first, _, _ := strings.Cut(pr, "\n")
			if !strings.Contains(msg, "\n  "+first) {
				t.Errorf("%s: the reconciler's problem %q is not in the webhook's message %q", name, pr, msg)
			}
		}
	}

	// A valid Pipeline of shop in shop: allowed, with a warning that the
	// tenant has another.
	valid := newPipeline("shop", "main", pipelineDoc("shop", 2, "warn"))
	resp := rv.review(admissionv1.Create, nil, valid)
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "Pipeline shop/other is tenant shop's too") {
		t.Errorf("a valid Pipeline: allowed %v (%+v), warnings %q", resp.Allowed, resp.Result, resp.Warnings)
	}
	// No tests: allowed, and said.
	untested := newPipeline("shop", "untested", "tenant: shop\nversion: 2\nsteps:\n  - json: {}\n")
	if resp := rv.review(admissionv1.Create, nil, untested); !resp.Allowed || len(resp.Warnings) != 2 || !strings.Contains(resp.Warnings[0], "the document has no tests") {
		t.Errorf("a Pipeline without tests: allowed %v, warnings %q", resp.Allowed, resp.Warnings)
	}

	// A deprecated key: allowed, and said where, as sluice pipeline
	// validate says it; the reconciler says it in the Validated condition
	// (validMessage).
	oldKey := newPipeline("shop", "old-key", "tenant: shop\nversion: 3\nsteps:\n  - route: {if: 'true', stream: audit}\n"+
		"tests:\n  - name: routed\n    line: x\n    expect: {dataset: audit}\n")
	wantWarning := "spec.document: line 4, column 25: route.stream is deprecated: write route.dataset (same meaning)"
	if resp := rv.review(admissionv1.Create, nil, oldKey); !resp.Allowed || len(resp.Warnings) != 2 || resp.Warnings[0] != wantWarning {
		t.Errorf("a Pipeline with a deprecated key: allowed %v, warnings %q", resp.Allowed, resp.Warnings)
	}
	if loaded, err := router.Load([]byte(oldKey.Spec.Document)); err != nil || validMessage(loaded) != "version 3 is valid and its 1 tests pass; 1 warning(s): "+wantWarning {
		t.Errorf("a Pipeline with a deprecated key: Validated says %q (%v)", validMessage(loaded), err)
	}

	// Validation fails: every problem with its line and column, as
	// router.Load (sluice pipeline validate) words it.
	badDoc := "tenant: shop\nversion: 1\nsteps:\n  - nope: {}\n  - drop:\n      if: 'attributes.x ==='\n"
	_, loadErr := router.Load([]byte(badDoc))
	if loadErr == nil {
		t.Fatal("the invalid document loads")
	}
	bad := newPipeline("shop", "bad", badDoc)
	msg := denied("invalid document", rv.review(admissionv1.Create, nil, bad), ReasonInvalidDocument,
		"the document fails validation or its tests: 2 problem(s):", "\n  line 4, column 5: ", `unknown step type "nope"`, "\n  line 6")
	// A problem of several lines (an expression and a caret under it) is
	// indented under its first, as sluice pipeline validate prints it.
	for _, pr := range problems(loadErr) {
		first, rest, _ := strings.Cut(pr, "\n")
		want := "\n  " + first
		for _, l := range strings.Split(rest, "\n") {
			if l != "" {
				want += "\n    " + l
			}
		}
		if !strings.Contains(msg, want) {
			t.Errorf("invalid document: the message lacks router.Load's problem %q", pr)
		}
	}
	sameAsReconciler("invalid document", bad, msg)

	// The document's embedded test fails.
	failing := newPipeline("shop", "failing", pipelineDoc("shop", 2, "error"))
	msg = denied("failing test", rv.review(admissionv1.Create, nil, failing), ReasonInvalidDocument,
		"1 problem(s):\n  line 6, column 5: ", `test "parsed"`, `attribute "level"`)
	sameAsReconciler("failing test", failing, msg)

	// shop's document in web, a namespace of tenant web; and in a
	// namespace no Tenant owns.
	hijack := newPipeline("web", "evil", pipelineDoc("shop", 9, "warn"))
	msg = denied("another tenant's namespace", rv.review(admissionv1.Create, nil, hijack), ReasonWrongTenant)
	if want := "WrongTenant: the document is tenant shop's, but namespace web belongs to tenant web"; msg != want {
		t.Errorf("another tenant's namespace: message %q, want %q", msg, want)
	}
	sameAsReconciler("another tenant's namespace", hijack, msg)
	orphan := newPipeline("nobody", "p", pipelineDoc("shop", 9, "warn"))
	msg = denied("no tenant's namespace", rv.review(admissionv1.Create, nil, orphan), ReasonNoTenant, "no Tenant owns namespace nobody")
	sameAsReconciler("no tenant's namespace", orphan, msg)

	// Updates of a Pipeline whose version 1 is in force (the reconciler
	// applied it at generation 1).
	applied := newPipeline("shop", "main", pipelineDoc("shop", 1, "warn"))
	applied.Status = v1alpha1.PipelineStatus{Tenant: "shop", AppliedVersion: 1, Conditions: []metav1.Condition{
		{Type: ConditionApplied, Status: metav1.ConditionTrue, Reason: ReasonApplied, ObservedGeneration: 1}}}
	changed := applied.DeepCopy()
	changed.Generation = 2
	changed.Spec.Document = strings.Replace(applied.Spec.Document, "json: {}", "json: {depth: 3}", 1)
	msg = denied("a change that keeps the version", rv.review(admissionv1.Update, applied, changed), ReasonVersionNotRaised)
	if want := "VersionNotRaised: version 1 is not greater than the stored version 1: raise version to apply a change"; msg != want {
		t.Errorf("a change that keeps the version: message %q, want %q", msg, want)
	}
	raised := changed.DeepCopy()
	raised.Spec.Document = strings.Replace(raised.Spec.Document, "version: 1", "version: 2", 1)
	if resp := rv.review(admissionv1.Update, applied, raised); !resp.Allowed {
		t.Errorf("a change with a raised version: denied %+v", resp.Result)
	}
	// Version 1 never applied (it failed): what is stored is unknown
	// here, so the reconciler decides.
	unapplied := applied.DeepCopy()
	unapplied.Status = v1alpha1.PipelineStatus{}
	if resp := rv.review(admissionv1.Update, unapplied, changed); !resp.Allowed {
		t.Errorf("a change of a document never applied: denied %+v", resp.Result)
	}
	// The refused orphan's finalizer removed, its document unchanged:
	// allowed, or a deletion could hang.
	unfinalized := orphan.DeepCopy()
	orphan.Finalizers = []string{PipelineFinalizer}
	if resp := rv.review(admissionv1.Update, orphan, unfinalized); !resp.Allowed {
		t.Errorf("a metadata-only update of a refused Pipeline: denied %+v", resp.Result)
	}
	if resp := rv.review(admissionv1.Delete, nil, hijack); !resp.Allowed {
		t.Errorf("a deletion: denied %+v", resp.Result)
	}

	for result, want := range map[string]float64{"allowed": 6, "denied": 5, "error": 0} {
		if n := testutil.ToFloat64(m.admissions.WithLabelValues(result)); n != want {
			t.Errorf("admissions %s: %v counted, want %v", result, n, want)
		}
	}

	// A renewed certificate is served without a restart.
	renewed := writeServingCert(t, dir)
	testwait.For(t, 30*time.Second, fmt.Sprintf("the renewed certificate %v to be served", renewed.SerialNumber), func() (bool, string) {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.Port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		served := conn.ConnectionState().PeerCertificates[0].SerialNumber
		_ = conn.Close()
		return served.Cmp(renewed.SerialNumber) == 0, fmt.Sprintf("serving %v", served)
	})
}

// TestWebhookCheckFails: when the check itself fails (the Tenants
// unreadable) the webhook gives no verdict on the document: an internal
// error, counted as such, which the API server reports as a failed call.
func TestWebhookCheckFails(t *testing.T) {
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("the API server is away")
		},
	}).Build()
	m := newMetrics(prometheus.NewRegistry())
	v := &PipelineValidator{Client: cl, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Decisions: m.admissions}
	_, err := v.ValidateCreate(context.Background(), newPipeline("shop", "main", pipelineDoc("shop", 1, "warn")))
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "list tenants: the API server is away") {
		t.Fatalf("ValidateCreate with the Tenants unreadable: %v", err)
	}
	if n := testutil.ToFloat64(m.admissions.WithLabelValues("error")); n != 1 {
		t.Errorf("%v errors counted, want 1", n)
	}
}

// TestWebhookConfig: the webhook is off by default; a port needs a
// certificate directory, and a bad port names its variable.
func TestWebhookConfig(t *testing.T) {
	if err := (WebhookConfig{}).Validate(); err != nil {
		t.Errorf("no webhook: %v", err)
	}
	if (WebhookConfig{}).server() != nil {
		t.Error("a webhook server without a port")
	}
	if err := (WebhookConfig{Port: 9443}).Validate(); err == nil || !strings.Contains(err.Error(), "SLUICE_CONTROLLER_WEBHOOK_CERT_DIR") {
		t.Errorf("a port without a certificate directory: %v", err)
	}
	if err := (WebhookConfig{Port: 70000, CertDir: "/x"}).Validate(); err == nil || !strings.Contains(err.Error(), "SLUICE_CONTROLLER_WEBHOOK_PORT") {
		t.Errorf("port 70000: %v", err)
	}
	ready := false
	(WebhookConfig{}).readyWhenServing(context.Background(), nil, func(b bool) { ready = b }, nil)
	if !ready {
		t.Error("without the webhook the controller is not reported ready at once")
	}
}
