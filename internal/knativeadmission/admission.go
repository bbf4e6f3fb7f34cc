// Package knativeadmission runs Knative's admission rules on an object, as the
// defaulting and validating webhooks of Knative Serving and Eventing do on create:
// decode into Knative's Go type, SetDefaults, then Validate, with a context carrying
// the same configuration (feature flags, defaults) the webhooks read from their
// ConfigMaps.
//
// A test apiserver has Knative's CRDs but not its webhooks, and the CRD schemas accept
// almost anything; this package is what refuses what a cluster would refuse.
package knativeadmission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingv1alpha1 "knative.dev/eventing/pkg/apis/eventing/v1alpha1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/webhook/resourcesemantics"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Object is what Knative's webhooks admit: a Kubernetes object with SetDefaults and
// Validate.
type Object = resourcesemantics.GenericCRD

// kinds maps each Knative kind this package knows to a constructor of its Go type.
// An object of another Knative group fails Decode, so a new kind cannot go unchecked.
var kinds = map[schema.GroupVersionKind]func() Object{
	servingv1.SchemeGroupVersion.WithKind("Service"):       func() Object { return &servingv1.Service{} },
	servingv1.SchemeGroupVersion.WithKind("Configuration"): func() Object { return &servingv1.Configuration{} },
	servingv1.SchemeGroupVersion.WithKind("Route"):         func() Object { return &servingv1.Route{} },
	eventingv1.SchemeGroupVersion.WithKind("Broker"):       func() Object { return &eventingv1.Broker{} },
	eventingv1.SchemeGroupVersion.WithKind("Trigger"):      func() Object { return &eventingv1.Trigger{} },
	eventingv1alpha1.SchemeGroupVersion.WithKind("EventPolicy"): func() Object {
		return &eventingv1alpha1.EventPolicy{}
	},
	flowsv1.SchemeGroupVersion.WithKind("Sequence"):            func() Object { return &flowsv1.Sequence{} },
	flowsv1.SchemeGroupVersion.WithKind("Parallel"):            func() Object { return &flowsv1.Parallel{} },
	messagingv1.SchemeGroupVersion.WithKind("Channel"):         func() Object { return &messagingv1.Channel{} },
	messagingv1.SchemeGroupVersion.WithKind("InMemoryChannel"): func() Object { return &messagingv1.InMemoryChannel{} },
	messagingv1.SchemeGroupVersion.WithKind("Subscription"):    func() Object { return &messagingv1.Subscription{} },
	sourcesv1.SchemeGroupVersion.WithKind("SinkBinding"):       func() Object { return &sourcesv1.SinkBinding{} },
	sourcesv1.SchemeGroupVersion.WithKind("ApiServerSource"):   func() Object { return &sourcesv1.ApiServerSource{} },
	sourcesv1.SchemeGroupVersion.WithKind("ContainerSource"):   func() Object { return &sourcesv1.ContainerSource{} },
}

// IsKnative reports whether gvk belongs to one of Knative's API groups (*.knative.dev).
func IsKnative(gvk schema.GroupVersionKind) bool {
	return gvk.Group == "knative.dev" || strings.HasSuffix(gvk.Group, ".knative.dev")
}

// Decode decodes a Knative object (JSON, e.g. an unstructured object's content) into
// its Go type. A field the type does not have is an error: Knative's CRD schemas
// keep unknown fields, and the controllers would silently ignore a misspelt one.
func Decode(gvk schema.GroupVersionKind, raw []byte) (Object, error) {
	newObj, ok := kinds[gvk]
	if !ok {
		return nil, fmt.Errorf("no Go type for Knative kind %s: add it to knativeadmission", gvk)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	return obj, nil
}

// Admit runs on obj what Knative's webhooks run when a user creates it: SetDefaults,
// then Validate, both within a create request by user, in ctx (see Config.Context).
// It returns the validation's errors, and its warnings, which the webhook passes
// to the client without refusing the object, separately.
//
// Some rules need a cluster (cross-namespace references check the user's access with
// a SubjectAccessReview); Knative's code panics without one, and Admit returns that
// as an error.
func Admit(ctx context.Context, obj Object, user string) (warnings []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s %s: Knative's admission needs what a test has not got: %v", obj.GetObjectKind().GroupVersionKind().Kind, name(obj), r)
		}
	}()
	ctx = apis.WithUserInfo(apis.WithinCreate(ctx), &authenticationv1.UserInfo{Username: user})
	obj.SetDefaults(ctx)
	result := obj.Validate(ctx)
	if result == nil {
		return nil, nil
	}
	if w := result.Filter(apis.WarningLevel); w != nil {
		for _, fe := range w.WrappedErrors() {
			warnings = append(warnings, fe.Error())
		}
	}
	if e := result.Filter(apis.ErrorLevel); e != nil {
		return warnings, fmt.Errorf("%s %s: refused by Knative's validation: %w", obj.GetObjectKind().GroupVersionKind().Kind, name(obj), e)
	}
	return warnings, nil
}

func name(obj Object) string {
	m, ok := obj.(metav1.Object)
	if !ok {
		return "?"
	}
	return m.GetNamespace() + "/" + m.GetName()
}
