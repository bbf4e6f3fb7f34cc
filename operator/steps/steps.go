// Package steps runs an Application's extra pipeline steps (spec.steps) between
// validation and dispatch. In a cluster a Knative Sequence per Application runs them
// (Objects builds it and the Trigger that feeds it); in the embedded platform Runner
// calls them in order. Either way the last step's reply comes back as module.validated
// with the extension wasmbedsteps=done, which dispatch and the operator act on.
package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// Sender delivers events to the broker.
type Sender interface {
	Send(ctx context.Context, e cloudevents.Event) error
}

// DefaultStepTimeout bounds one step's reply.
const DefaultStepTimeout = time.Minute

// Runner calls the steps over HTTP, in order, each with the previous step's reply.
type Runner struct {
	sender  Sender
	client  cloudevents.Client
	timeout time.Duration
}

// NewRunner returns a Runner that sends the final event to sender.
func NewRunner(sender Sender) (*Runner, error) {
	p, err := cehttp.New(cehttp.WithClient(http.Client{}))
	if err != nil {
		return nil, fmt.Errorf("steps: %w", err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, fmt.Errorf("steps: %w", err)
	}
	return &Runner{sender: sender, client: c, timeout: DefaultStepTimeout}, nil
}

// Run passes e through app's steps and sends the result on. Its error names the step.
func (r *Runner) Run(ctx context.Context, app *v1.Application, e cloudevents.Event) error {
	cur := e
	for i, step := range app.Spec.Steps {
		if step.URI == "" {
			return fmt.Errorf("spec.steps[%d]: a ref (%s %s) needs Knative to resolve; in the embedded platform give a uri", i, step.Ref.Kind, step.Ref.Name)
		}
		reply, err := r.call(ctx, step.URI, cur)
		if err != nil {
			return fmt.Errorf("spec.steps[%d] (%s): %w", i, step.URI, err)
		}
		cur = *reply
	}
	return Done(ctx, r.sender, cur, e.Subject())
}

func (r *Runner) call(ctx context.Context, url string, e cloudevents.Event) (*cloudevents.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	reply, res := r.client.Request(cloudevents.ContextWithTarget(ctx, url), e)
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) && hr.StatusCode/100 != 2 {
		return nil, fmt.Errorf("status %d", hr.StatusCode)
	}
	if !cloudevents.IsACK(res) {
		return nil, fmt.Errorf("%w", res)
	}
	if reply == nil {
		return nil, errors.New("no reply: a step must reply with the module.validated event")
	}
	return reply, nil
}

// Done checks that e, the last step's reply, is still the module.validated event of
// the Application with the given subject, marks it wasmbedsteps=done and sends it on.
func Done(ctx context.Context, sender Sender, e cloudevents.Event, subject string) error {
	if _, err := events.Decode(e, events.ModuleValidated); err != nil {
		return fmt.Errorf("the last step's reply: %w", err)
	}
	if subject != "" && e.Subject() != subject {
		return fmt.Errorf("the last step's reply is about %q, not %q", e.Subject(), subject)
	}
	out := e.Clone()
	out.SetExtension(events.ExtSteps, events.StepsDone)
	if err := sender.Send(ctx, out); err != nil {
		return fmt.Errorf("send the steps' result: %w", err)
	}
	return nil
}

// DoneHandler is the reply target of the Knative Sequences: it marks the event done
// and sends it to the broker. Only the Sequence of the Application the event names may
// answer for it (ReplyUser): an authenticated sender that is not that Sequence's last
// Subscription gets 403, whatever else it may send. It answers 400 to anything but a
// module.validated event.
func DoneHandler(sender Sender, reader client.Reader, auth *eventauth.Policy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, ok := eventauth.Admit(auth, w, req)
		if !ok {
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, 2<<20)
		e, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		ns, name, found := strings.Cut(e.Subject(), "/")
		if !found {
			http.Error(w, fmt.Sprintf("subject %.100q does not name an Application", e.Subject()), http.StatusBadRequest)
			return
		}
		var app v1.Application
		if err := reader.Get(req.Context(), client.ObjectKey{Namespace: ns, Name: name}, &app); err != nil {
			code := http.StatusBadGateway
			if apierrors.IsNotFound(err) {
				code = http.StatusUnprocessableEntity
			}
			http.Error(w, fmt.Sprintf("application %.100s: %v", e.Subject(), err), code)
			return
		}
		if want := ReplyUser(&app); id != want {
			eventauth.Write(w, auth.Forbid(req, id, fmt.Errorf("%s may not answer for %s's steps, only %s", id, e.Subject(), want)))
			return
		}
		if err := Done(req.Context(), sender, *e, e.Subject()); err != nil {
			var bad *events.BadEventError
			if errors.As(err, &bad) {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}
