package controller

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/router"
)

// refusal is why a Pipeline cannot be applied as it is. The reconciler
// records it in the Pipeline's status and leaves the version in force; the
// admission webhook denies the request with it. Both get it from
// checkPipeline and versionNotRaised, so the two cannot disagree on what
// is refused nor word it differently.
type refusal struct {
	// reason is the Validated (or Applied) condition's reason:
	// ReasonNoTenant, ReasonInvalidDocument, ReasonWrongTenant or
	// ReasonVersionNotRaised.
	reason string
	msg    string
	// problems are the document's validation and test failures, each with
	// its line and column, as sluice pipeline validate prints them.
	problems []string
}

// Error is the webhook's message: the reason, what is wrong, and the
// problems one a line, indented like sluice pipeline validate's.
func (r *refusal) Error() string {
	var b strings.Builder
	b.WriteString(r.reason + ": " + r.msg)
	if len(r.problems) > 0 {
		fmt.Fprintf(&b, ": %d problem(s):", len(r.problems))
		for _, pr := range r.problems {
			first, rest, _ := strings.Cut(pr, "\n")
			b.WriteString("\n  " + first)
			for _, l := range strings.Split(rest, "\n") {
				if l != "" {
					b.WriteString("\n    " + l)
				}
			}
		}
	}
	return b.String()
}

// checkPipeline runs the checks that come before a Pipeline is applied and
// need no Kafka, in the reconciler's order: a Tenant owns the Pipeline's
// namespace, the document passes validation and its tests (router.Load,
// the code of sluice pipeline validate and of the routers), and it is that
// tenant's. It returns the loaded document and the owning tenant. A
// *refusal says why the Pipeline cannot be applied as it is; any other
// error is a failure of the check itself (the Tenants unreadable, a
// namespace claimed by two Tenants), which may pass.
func checkPipeline(ctx context.Context, c client.Reader, p *v1alpha1.Pipeline) (*router.Pipeline, string, error) {
	owner, err := owner(ctx, c, p.Namespace)
	if err != nil {
		return nil, "", err
	}
	if owner == "" {
		return nil, "", &refusal{reason: ReasonNoTenant,
			msg: fmt.Sprintf("no Tenant owns namespace %s: a Pipeline must live in a namespace its tenant owns", p.Namespace)}
	}
	loaded, err := router.Load([]byte(p.Spec.Document))
	if err != nil {
		return nil, "", &refusal{reason: ReasonInvalidDocument, msg: "the document fails validation or its tests", problems: problems(err)}
	}
	if loaded.Tenant != owner {
		return nil, "", &refusal{reason: ReasonWrongTenant,
			msg: fmt.Sprintf("the document is tenant %s's, but namespace %s belongs to tenant %s", loaded.Tenant, p.Namespace, owner)}
	}
	return loaded, owner, nil
}

// documentWarnings are what a document that passes says that should change
// (a deprecated key), one "spec.document: line L, column C: ..." each, as
// sluice pipeline validate prints them: the webhook returns them as
// admission warnings, and the reconciler puts them in the Validated
// condition.
func documentWarnings(p *router.Pipeline) []string {
	var out []string
	for _, w := range p.Warnings() {
		out = append(out, "spec.document: "+w.String())
	}
	return out
}

// validMessage is the Validated condition's message of a document that
// passes: its version, its tests and its warnings.
func validMessage(p *router.Pipeline) string {
	msg := fmt.Sprintf("version %d is valid and its %d tests pass", p.Version, len(p.Spec().Tests))
	if w := documentWarnings(p); len(w) > 0 {
		msg += fmt.Sprintf("; %d warning(s): %s", len(w), strings.Join(w, "; "))
	}
	return msg
}

// versionNotRaised is the rule of a change, sluice pipeline apply's: a
// document replaces the stored one (of version storedVersion) only with a
// greater version. It reports whether doc is the stored document already
// (nothing to apply), and a refusal when doc may not replace it.
func versionNotRaised(version int64, doc []byte, storedVersion int64, stored []byte) (same bool, ref *refusal) {
	switch {
	case storedVersion == version && bytes.Equal(stored, doc):
		return true, nil
	case storedVersion >= version:
		return false, &refusal{reason: ReasonVersionNotRaised,
			msg: fmt.Sprintf("version %d is not greater than the stored version %d: raise version to apply a change", version, storedVersion)}
	}
	return false, nil
}

// notApplied is a refused Pipeline's condition message: that nothing was
// applied, which version stays in force (inForce, 0 when the Pipeline
// never had one applied), and why. Without the webhook the API server
// takes any document, so the status is where a refusal shows.
func notApplied(inForce int64, why string) string {
	if inForce > 0 {
		return fmt.Sprintf("not applied, version %d stays in force: %s", inForce, why)
	}
	return "not applied, the tenant's pipeline stays as it is: " + why
}
