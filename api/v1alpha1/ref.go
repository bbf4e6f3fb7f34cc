package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Ref names a namespaced Wasmbed object, a Device or a Gateway. Its one string form is
// "<namespace>/<name>" (String, ParseRef, and JSON); CloudEvents extension attributes
// cannot hold a slash, so there it is written "<namespace>.<name>" (Extension), which is
// unambiguous because a namespace has no dots.
type Ref struct {
	Namespace string
	Name      string
}

// ParseRef reads "<namespace>/<name>" and checks both parts.
func ParseRef(s string) (Ref, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return Ref{}, fmt.Errorf("reference %.80q is not <namespace>/<name>", s)
	}
	r := Ref{Namespace: ns, Name: name}
	if err := r.Validate(); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// Validate checks that the namespace is a DNS label and the name a DNS subdomain, as
// Kubernetes requires of every Device and Gateway.
func (r Ref) Validate() error {
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("reference %.80q: namespace: %s", r.String(), errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(r.Name); len(errs) > 0 {
		return fmt.Errorf("reference %.80q: name: %s", r.String(), errs[0])
	}
	return nil
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r == Ref{} }

// String returns "<namespace>/<name>", or "" for the zero Ref.
func (r Ref) String() string {
	if r.IsZero() {
		return ""
	}
	return r.Namespace + "/" + r.Name
}

// Extension returns the form of r in a CloudEvents extension attribute:
// "<namespace>.<name>".
func (r Ref) Extension() string {
	if r.IsZero() {
		return ""
	}
	return r.Namespace + "." + r.Name
}

// MarshalText writes r as String does.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads r as ParseRef does; empty text is the zero Ref.
func (r *Ref) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Ref{}
		return nil
	}
	v, err := ParseRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// GatewayRef is the gateway that holds the device, or will: the one its session is on
// (status.gateway), else the one its spec names (in the device's namespace), else def.
// Dispatch routes deployments and the console reads device logs by this one rule.
func (d *Device) GatewayRef(def Ref) Ref {
	if r, err := ParseRef(d.Status.Gateway); err == nil {
		return r
	}
	if d.Spec.Gateway != "" {
		return Ref{Namespace: d.Namespace, Name: d.Spec.Gateway}
	}
	return def
}

// Ref returns the Gateway's reference, the name devices and events know it by.
func (g *Gateway) Ref() Ref { return Ref{Namespace: g.Namespace, Name: g.Name} }

// Ref returns the Device's reference.
func (d *Device) Ref() Ref { return Ref{Namespace: d.Namespace, Name: d.Name} }
