// Package kube is the gateway's Kubernetes device registry: an informer on
// wasmbed.dev/v1alpha1 Devices decides which devices may connect, with which key, and
// closes the session of a device that is disabled (spec.disabled), deleted, marked for
// re-enrollment, or whose recorded key changes.
package kube

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	wasmbedv1alpha1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Registry implements gateway.Registry from the Device objects of a cluster. A device
// may connect when its Device exists, is not disabled, not being deleted and not
// marked for re-enrollment, and, once the platform has recorded a certificate for it
// (status.certificateNotAfter), when it presents the recorded key
// (status.publicKeyHash; none when that is empty). A Device without a recorded
// certificate (an emulated board whose board manager issues its certificate in memory)
// is admitted on its CA-signed certificate alone.
type Registry struct {
	cache  cache.Cache
	logger *slog.Logger
}

// Options tune a Registry.
type Options struct {
	// Namespaces limits the informer to these namespaces; empty watches all.
	Namespaces []string
	// Logger receives revocations.
	Logger *slog.Logger
}

// New returns a registry reading Devices with cfg. Watch starts the informer.
func New(cfg *rest.Config, o Options) (*Registry, error) {
	scheme := runtime.NewScheme()
	if err := wasmbedv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kube registry: %w", err)
	}
	co := cache.Options{Scheme: scheme}
	if len(o.Namespaces) > 0 {
		co.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			co.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(cfg, co)
	if err != nil {
		return nil, fmt.Errorf("kube registry: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{cache: c, logger: o.Logger}, nil
}

// Check allows a device whose Device exists, is neither disabled, deleted nor marked
// for re-enrollment, and whose certificate cert is for the recorded key. It waits for
// the informer's first list (bounded by ctx).
func (r *Registry) Check(ctx context.Context, id pki.Identity, cert *x509.Certificate) error {
	if !r.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("kube registry: device cache not synced: %w", ctx.Err())
	}
	var d wasmbedv1alpha1.Device
	err := r.cache.Get(ctx, types.NamespacedName{Namespace: id.Namespace, Name: id.Name}, &d)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: no Device %s", gateway.ErrNotAllowed, id)
	case err != nil:
		return fmt.Errorf("kube registry: get device %s: %w", id, err)
	}
	if why := refused(&d); why != "" {
		return fmt.Errorf("%w: Device %s is %s", gateway.ErrNotAllowed, id, why)
	}
	if why := wrongKey(&d, cert); why != "" {
		return fmt.Errorf("%w: Device %s: %s", gateway.ErrNotAllowed, id, why)
	}
	return nil
}

// refused says why a Device admits no key at all, or "".
func refused(d *wasmbedv1alpha1.Device) string {
	switch {
	case d.DeletionTimestamp != nil:
		return "being deleted"
	case d.Spec.Disabled:
		return "disabled"
	case d.Annotations[wasmbedv1alpha1.DeviceReenrollAnnotation] != "":
		return "marked for re-enrollment (" + wasmbedv1alpha1.DeviceReenrollAnnotation + "): its current key is revoked"
	}
	return ""
}

// wrongKey says why cert is not the Device's recorded key, or "".
func wrongKey(d *wasmbedv1alpha1.Device, cert *x509.Certificate) string {
	recorded := d.Status.PublicKeyHash
	if !pinned(d) {
		return ""
	}
	if cert == nil {
		return "no certificate to compare with its recorded key"
	}
	got := pki.PublicKeyHash(cert.RawSubjectPublicKeyInfo)
	switch {
	case recorded == "":
		return "its recorded key was cleared (status.publicKeyHash is empty): no key is admitted until it re-enrolls; the device presents " + got
	case got != recorded:
		return "the device presents key " + got + ", not its recorded key " + recorded
	}
	return ""
}

// pinned reports whether a Device admits only its recorded key: once the platform has
// recorded a certificate for it, or a key.
func pinned(d *wasmbedv1alpha1.Device) bool {
	return d.Status.PublicKeyHash != "" || d.Status.CertificateNotAfter != nil
}

// keyChanged reports whether the key a Device admits changed between two versions.
func keyChanged(prev, next *wasmbedv1alpha1.Device) bool {
	return pinned(prev) != pinned(next) || prev.Status.PublicKeyHash != next.Status.PublicKeyHash
}

// Watch runs the informer until ctx is done and calls revoked for every Device that
// becomes disabled, starts deletion, is deleted, is marked for re-enrollment or whose
// recorded key changes or is cleared. A device whose key is still admitted reconnects
// and is checked again.
func (r *Registry) Watch(ctx context.Context, revoked func(pki.Identity)) error {
	inf, err := r.cache.GetInformer(ctx, &wasmbedv1alpha1.Device{})
	if err != nil {
		return fmt.Errorf("kube registry: informer: %w", err)
	}
	report := func(obj any, why string) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		d, ok := obj.(*wasmbedv1alpha1.Device)
		if !ok {
			return
		}
		r.logger.Info("device revoked", "device", d.Namespace+"/"+d.Name, "why", why)
		revoked(pki.Identity{Namespace: d.Namespace, Name: d.Name})
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, obj any) {
			d, ok := obj.(*wasmbedv1alpha1.Device)
			if !ok {
				return
			}
			if why := refused(d); why != "" {
				report(d, why)
			} else if prev, ok := oldObj.(*wasmbedv1alpha1.Device); ok && keyChanged(prev, d) {
				report(d, "recorded key changed")
			}
		},
		DeleteFunc: func(obj any) { report(obj, "deleted") },
	})
	if err != nil {
		return fmt.Errorf("kube registry: event handler: %w", err)
	}
	if err := r.cache.Start(ctx); err != nil {
		return fmt.Errorf("kube registry: %w", err)
	}
	return nil
}
