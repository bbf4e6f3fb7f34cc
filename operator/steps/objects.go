package steps

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventauth"
)

// ClusterOptions say where the Sequence's input comes from and its result goes.
type ClusterOptions struct {
	// BrokerNamespace and Broker name the broker the Trigger subscribes to.
	BrokerNamespace, Broker string
	// ReplyURL is the operator's DoneHandler, e.g.
	// http://wasmbed-operator.wasmbed-system.svc.cluster.local/steps-done.
	ReplyURL string
}

// LabelApplication marks the Trigger of an Application's steps ("<ns>.<name>").
const LabelApplication = "wasmbed.dev/application"

// Names returns the names of the Sequence (in the Application's namespace) and of its
// Trigger (in the broker's namespace).
func Names(app *v1.Application) (sequence, trigger string) {
	return app.Name + "-steps", fmt.Sprintf("steps-%s-%s", app.Namespace, app.Name)
}

// ReplyUser is who sends the reply of app's Sequence in a cluster: the Subscription of
// its last step (Knative names a Sequence's Subscriptions "<sequence>-kn-sequence-<i>").
// Only that identity may hand the operator an Application's steps result.
func ReplyUser(app *v1.Application) string {
	seq, _ := Names(app)
	last := max(len(app.Spec.Steps)-1, 0)
	return eventauth.SubscriptionUser(app.Namespace, fmt.Sprintf("%s-kn-sequence-%d", seq, last))
}

// Objects returns the Knative Sequence that runs app's steps and the Trigger that sends
// it the Application's module.validated events.
func Objects(app *v1.Application, o ClusterOptions) (*flowsv1.Sequence, *eventingv1.Trigger, error) {
	reply, err := apis.ParseURL(o.ReplyURL)
	if err != nil || reply == nil || reply.Host == "" {
		return nil, nil, fmt.Errorf("steps: reply URL %q is not absolute", o.ReplyURL)
	}
	seqName, trigName := Names(app)
	seq := &flowsv1.Sequence{
		TypeMeta:   metav1.TypeMeta{APIVersion: "flows.knative.dev/v1", Kind: "Sequence"},
		ObjectMeta: metav1.ObjectMeta{Name: seqName, Namespace: app.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "wasmbed"}},
		Spec: flowsv1.SequenceSpec{
			ChannelTemplate: &messagingv1.ChannelTemplateSpec{
				TypeMeta: metav1.TypeMeta{APIVersion: "messaging.knative.dev/v1", Kind: "InMemoryChannel"},
			},
			// The channel sends the reply with the last step's Subscription's token for
			// this audience, which the operator's receiver requires (ReplyUser).
			Reply: &duckv1.Destination{URI: reply, Audience: ptr.To(events.ReceiverAudience("operator"))},
		},
	}
	for i, st := range app.Spec.Steps {
		var d duckv1.Destination
		switch {
		case st.Ref != nil:
			d.Ref = &duckv1.KReference{APIVersion: st.Ref.APIVersion, Kind: st.Ref.Kind, Name: st.Ref.Name, Namespace: app.Namespace}
		default:
			u, err := apis.ParseURL(st.URI)
			if err != nil {
				return nil, nil, fmt.Errorf("spec.steps[%d].uri: %w", i, err)
			}
			d.URI = u
		}
		seq.Spec.Steps = append(seq.Spec.Steps, flowsv1.SequenceStep{Destination: d})
	}
	trig := &eventingv1.Trigger{
		TypeMeta: metav1.TypeMeta{APIVersion: "eventing.knative.dev/v1", Kind: "Trigger"},
		ObjectMeta: metav1.ObjectMeta{Name: trigName, Namespace: o.BrokerNamespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "wasmbed", LabelApplication: app.Namespace + "." + app.Name}},
		Spec: eventingv1.TriggerSpec{
			Broker: o.Broker,
			// The Application's module.validated, but not the one the steps already
			// passed (wasmbedsteps=done), which would go round again.
			Filters: []eventingv1.SubscriptionsAPIFilter{{All: []eventingv1.SubscriptionsAPIFilter{
				{Exact: map[string]string{"type": string(events.ModuleValidated), "subject": app.Namespace + "/" + app.Name}},
				{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{events.ExtSteps: events.StepsDone}}},
			}}},
			Subscriber: duckv1.Destination{Ref: &duckv1.KReference{
				APIVersion: "flows.knative.dev/v1", Kind: "Sequence", Name: seqName, Namespace: app.Namespace,
			}},
		},
	}
	return seq, trig, nil
}
