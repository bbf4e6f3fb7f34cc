package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/wasmbed/wasmbed/api/digest"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// kind is one of the Wasmbed kinds the API lists and gets.
type kind struct {
	plural, name string
	newObj       func() client.Object
	newList      func() client.ObjectList
}

var kinds = []kind{
	{"devices", "Device", func() client.Object { return &v1.Device{} }, func() client.ObjectList { return &v1.DeviceList{} }},
	{"applications", "Application", func() client.Object { return &v1.Application{} }, func() client.ObjectList { return &v1.ApplicationList{} }},
	{"gateways", "Gateway", func() client.Object { return &v1.Gateway{} }, func() client.ObjectList { return &v1.GatewayList{} }},
}

// Labels and names of the ConfigMap that holds an uploaded module.
const (
	labelApplication = "wasmbed.dev/application"
	labelManagedBy   = "app.kubernetes.io/managed-by"
	managedBy        = "wasmbed-console"
	moduleKey        = "module.wasm"
	// maxModuleBytes leaves room for the ConfigMap's metadata under etcd's 1 MiB limit.
	maxModuleBytes = 1000 << 10
)

func moduleConfigMapName(app string) string { return app + "-module" }

// userClient returns a client acting as the request's user and a context bounded by
// DefaultRequestTimeout.
func (s *Server) userClient(r *http.Request) (client.WithWatch, context.Context, context.CancelFunc, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := s.clientFor(tok)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultRequestTimeout)
	return c, ctx, cancel, nil
}

// namespaceOf is the path's namespace, else the ?namespace= query (empty: all).
func namespaceOf(r *http.Request) string {
	if ns := r.PathValue("namespace"); ns != "" {
		return ns
	}
	return r.URL.Query().Get("namespace")
}

// trim drops managed fields, which the UI never shows.
func trim(obj runtime.Object) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
}

func (s *Server) list(k kind) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, ctx, cancel, err := s.userClient(r)
		if err != nil {
			return err
		}
		defer cancel()
		list := k.newList()
		var opts []client.ListOption
		if ns := namespaceOf(r); ns != "" {
			opts = append(opts, client.InNamespace(ns))
		}
		if sel := r.URL.Query().Get("labelSelector"); sel != "" {
			parsed, err := labels.Parse(sel)
			if err != nil {
				return badRequest("invalid label selector", err.Error())
			}
			opts = append(opts, client.MatchingLabelsSelector{Selector: parsed})
		}
		if err := c.List(ctx, list, opts...); err != nil {
			return err
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error { trim(o); return nil })
		writeJSON(w, http.StatusOK, list)
		return nil
	}
}

func (s *Server) get(k kind) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, ctx, cancel, err := s.userClient(r)
		if err != nil {
			return err
		}
		defer cancel()
		obj := k.newObj()
		if err := c.Get(ctx, client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, obj); err != nil {
			return err
		}
		trim(obj)
		writeJSON(w, http.StatusOK, obj)
		return nil
	}
}

// EventList is the answer of the events endpoints: core/v1 Events, newest first.
type EventList struct {
	Items []corev1.Event `json:"items"`
}

func (s *Server) objectEvents(k kind) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, ctx, cancel, err := s.userClient(r)
		if err != nil {
			return err
		}
		defer cancel()
		items, err := listEvents(ctx, c, r.PathValue("namespace"), k.name, r.PathValue("name"), 50)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, EventList{Items: items})
		return nil
	}
}

func (s *Server) listRecentEvents(w http.ResponseWriter, r *http.Request) error {
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	items, err := listEvents(ctx, c, namespaceOf(r), "", "", 50)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, EventList{Items: items})
	return nil
}

func sortEvents(items []corev1.Event) {
	sort.SliceStable(items, func(i, j int) bool { return eventTime(&items[i]) > eventTime(&items[j]) })
}

// WhoAmI is the signed-in user as the apiserver authenticated the token.
type WhoAmI struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	rev := &authnv1.SelfSubjectReview{}
	if err := c.Create(ctx, rev); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WhoAmI{Username: rev.Status.UserInfo.Username, Groups: rev.Status.UserInfo.Groups})
	return nil
}

// NamespaceList names the namespaces the user may list.
type NamespaceList struct {
	Items []string `json:"items"`
}

func (s *Server) listNamespaces(w http.ResponseWriter, r *http.Request) error {
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	var list corev1.NamespaceList
	if err := c.List(ctx, &list); err != nil {
		return err
	}
	out := NamespaceList{Items: []string{}}
	for _, n := range list.Items {
		out.Items = append(out.Items, n.Name)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ApplicationRequest creates or replaces an Application: from source (Source) or from
// an uploaded module (Module), never both.
type ApplicationRequest struct {
	// Name of the Application (a DNS label); ignored by PUT, which takes the path's.
	Name string `json:"name"`
	// Source is inline source code with its language.
	Source *v1.InlineSource `json:"source,omitempty"`
	// Module is a prebuilt module, stored in a ConfigMap's binaryData.
	Module *ModuleUpload `json:"module,omitempty"`
	// Selector picks the Devices of the namespace; nil selects every device.
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Config is passed to the application (config_get).
	Config map[string]string `json:"config,omitempty"`
	// Rollout is the rollout policy.
	Rollout *v1.RolloutSpec `json:"rollout,omitempty"`
}

// ModuleUpload is an uploaded .wasm module.
type ModuleUpload struct {
	// Wasm is the module, base64 in JSON.
	Wasm []byte `json:"wasm"`
}

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

func decodeApplicationRequest(r *http.Request, w http.ResponseWriter) (*ApplicationRequest, error) {
	var req ApplicationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUploadBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, msg: "request too large",
				detail: fmt.Sprintf("the body exceeds %d bytes; a module must stay under %d bytes", maxUploadBytes, maxModuleBytes)}
		}
		return nil, badRequest("malformed request", "the body must be a JSON ApplicationRequest (see /api/v1/openapi.yaml): "+err.Error())
	}
	if (req.Source == nil) == (req.Module == nil) {
		return nil, badRequest("source or module required", "give exactly one of source {language, code} or module {wasm}")
	}
	if req.Module != nil {
		if len(req.Module.Wasm) > maxModuleBytes {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, msg: "module too large",
				detail: fmt.Sprintf("the module has %d bytes; a ConfigMap holds at most %d", len(req.Module.Wasm), maxModuleBytes)}
		}
		if !bytes.HasPrefix(req.Module.Wasm, wasmMagic) {
			return nil, badRequest("not a webassembly module", "module.wasm must be a binary .wasm file (it starts with \\0asm); to send source text, use source with a language")
		}
	}
	return &req, nil
}

// spec applies the request to an Application's spec; source is replaced, steps kept.
func (req *ApplicationRequest) apply(app *v1.Application) {
	app.Spec.Source = v1.ApplicationSource{}
	if req.Source != nil {
		src := *req.Source
		app.Spec.Source.Inline = &src
	} else {
		app.Spec.Source.Module = &v1.ModuleSource{
			ConfigMap: &v1.ConfigMapKey{Name: moduleConfigMapName(app.Name), Key: moduleKey},
			Digest:    digest.Of(req.Module.Wasm),
		}
	}
	app.Spec.Selector = metav1.LabelSelector{}
	if req.Selector != nil {
		app.Spec.Selector = *req.Selector
	}
	app.Spec.Config = req.Config
	app.Spec.Rollout = v1.RolloutSpec{}
	if req.Rollout != nil {
		app.Spec.Rollout = *req.Rollout
	}
}

// putModule creates or updates the ConfigMap holding an uploaded module. It refuses
// to overwrite a ConfigMap the console did not create.
func putModule(ctx context.Context, c client.Client, ns, app string, wasm []byte) (created bool, err error) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: moduleConfigMapName(app), Namespace: ns,
		Labels: map[string]string{labelApplication: app, labelManagedBy: managedBy}},
		BinaryData: map[string][]byte{moduleKey: wasm}}
	err = c.Create(ctx, cm)
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKeyFromObject(cm), &cur); err != nil {
			return err
		}
		if cur.Labels[labelManagedBy] != managedBy {
			return &httpError{code: http.StatusConflict, msg: "configmap exists",
				detail: fmt.Sprintf("ConfigMap %s/%s exists and was not created by the console: rename the application or delete the ConfigMap", ns, cm.Name)}
		}
		cur.BinaryData = cm.BinaryData
		return c.Update(ctx, &cur)
	})
	return false, err
}

// ownModule makes the module's ConfigMap owned by its Application, so the garbage
// collector deletes it with the Application.
func ownModule(ctx context.Context, c client.Client, app *v1.Application) error {
	ref := metav1.OwnerReference{APIVersion: v1.SchemeGroupVersion.String(), Kind: "Application", Name: app.Name, UID: app.UID}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{ref}}})
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: moduleConfigMapName(app.Name), Namespace: app.Namespace}}
	return c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch))
}

func (s *Server) createApplication(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeApplicationRequest(r, w)
	if err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(req.Name); len(errs) > 0 {
		return badRequest("invalid name", fmt.Sprintf("name %q: %s", req.Name, errs[0]))
	}
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	ns := r.PathValue("namespace")
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: ns}}
	req.apply(app)
	createdCM := false
	if req.Module != nil {
		// A name already taken by an Application must not replace that
		// Application's module before the create below fails.
		var existing v1.Application
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), &existing); err == nil {
			return &httpError{code: http.StatusConflict, msg: "already exists",
				detail: fmt.Sprintf("Application %s/%s already exists: choose another name or edit it", ns, req.Name)}
		}
		if createdCM, err = putModule(ctx, c, ns, req.Name, req.Module.Wasm); err != nil {
			return err
		}
	}
	if err := c.Create(ctx, app); err != nil {
		if createdCM {
			_ = c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: moduleConfigMapName(req.Name), Namespace: ns}})
		}
		return err
	}
	if req.Module != nil {
		if err := ownModule(ctx, c, app); err != nil {
			s.log.Warn("own module configmap", "application", ns+"/"+app.Name, "err", err)
		}
	}
	trim(app)
	writeJSON(w, http.StatusCreated, app)
	return nil
}

func (s *Server) updateApplication(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeApplicationRequest(r, w)
	if err != nil {
		return err
	}
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	var app v1.Application
	if err := c.Get(ctx, key, &app); err != nil {
		return err
	}
	if req.Module != nil {
		if _, err := putModule(ctx, c, key.Namespace, key.Name, req.Module.Wasm); err != nil {
			return err
		}
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, key, &app); err != nil {
			return err
		}
		req.apply(&app)
		return c.Update(ctx, &app)
	})
	if err != nil {
		return err
	}
	if req.Module != nil {
		if err := ownModule(ctx, c, &app); err != nil {
			s.log.Warn("own module configmap", "application", key.String(), "err", err)
		}
	}
	trim(&app)
	writeJSON(w, http.StatusOK, &app)
	return nil
}

func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request) error {
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := c.Delete(ctx, app); err != nil {
		return err
	}
	// The garbage collector deletes an owned module ConfigMap; without one (make run
	// has no controller-manager) delete it here, only if the console made it.
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: moduleConfigMapName(name)}, &cm); err == nil &&
		cm.Labels[labelManagedBy] == managedBy && cm.Labels[labelApplication] == name {
		if err := c.Delete(ctx, &cm); err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("delete module configmap", "application", ns+"/"+name, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": ns + "/" + name})
	return nil
}

// rolloutPatches are the merge patches of the rollout actions. Abort stops the
// rollout where it is; rollback stops it and restores the previous good module.
var rolloutPatches = map[string]string{
	"pause":    `{"spec":{"rollout":{"paused":true}}}`,
	"resume":   `{"spec":{"rollout":{"paused":false,"abort":false}}}`,
	"abort":    `{"spec":{"rollout":{"abort":true,"autoRollback":false}}}`,
	"rollback": `{"spec":{"rollout":{"abort":true,"autoRollback":true}}}`,
}

// approvePatch approves step n of the current rollout, as kubectl annotate does: the
// operator records the approval in status.rollout.approvedStep and removes the annotation.
func approvePatch(step string) (string, error) {
	n, err := strconv.Atoi(step)
	if err != nil || n < 1 || n > 10 {
		return "", &httpError{code: http.StatusBadRequest, msg: "bad step",
			detail: fmt.Sprintf("step %q: approve takes ?step=N, the number (1 to 10) of the step that waits for approval", step)}
	}
	return fmt.Sprintf(`{"metadata":{"annotations":{%q:"%d"}}}`, rollout.ApproveAnnotation, n), nil
}

func (s *Server) rolloutAction(w http.ResponseWriter, r *http.Request) error {
	patch, ok := rolloutPatches[r.PathValue("action")]
	if r.PathValue("action") == "approve" {
		p, err := approvePatch(r.URL.Query().Get("step"))
		if err != nil {
			return err
		}
		patch, ok = p, true
	}
	if !ok {
		return &httpError{code: http.StatusNotFound, msg: "unknown rollout action",
			detail: fmt.Sprintf("%q: use pause, resume, abort, rollback or approve", r.PathValue("action"))}
	}
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: r.PathValue("name"), Namespace: r.PathValue("namespace")}}
	if err := c.Patch(ctx, app, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return err
	}
	trim(app)
	writeJSON(w, http.StatusOK, app)
	return nil
}

// DeviceLog is a device's console log as its gateway keeps it.
type DeviceLog struct {
	Device    string    `json:"device"`
	Gateway   string    `json:"gateway,omitempty"`
	Connected bool      `json:"connected"`
	Lines     []LogLine `json:"lines"`
	// Note explains an empty log.
	Note string `json:"note,omitempty"`
}

// LogLine is one line a device sent.
type LogLine struct {
	Time    string `json:"time"`
	Level   string `json:"level"`
	App     string `json:"app,omitempty"`
	Message string `json:"message"`
}

// deviceLog reads the Device as the user (so RBAC decides who sees the log), then asks
// the gateway that holds its session.
func (s *Server) deviceLog(w http.ResponseWriter, r *http.Request) error {
	c, ctx, cancel, err := s.userClient(r)
	if err != nil {
		return err
	}
	defer cancel()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	var d v1.Device
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		return err
	}
	gw := d.GatewayRef(v1.Ref{})
	out := DeviceLog{Device: d.Ref().String(), Lines: []LogLine{}, Gateway: gw.String()}
	base := ""
	if !gw.IsZero() {
		base = s.cfg.GatewayURL(gw)
	}
	if base == "" {
		out.Note = "the device has not connected to a gateway yet: start it (make run starts virtual devices) and check its certificate"
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	u := base + "/devices/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/log"
	greq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("gateway request: %w", err)
	}
	resp, err := s.gw.Do(greq)
	if err != nil {
		return &httpError{code: http.StatusBadGateway, msg: "gateway unreachable",
			detail: fmt.Sprintf("gateway %s at %s: %v; check that the gateway runs", out.Gateway, base, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &httpError{code: http.StatusBadGateway, msg: "gateway unreachable", detail: fmt.Sprintf("read log from gateway %s: %v", out.Gateway, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &httpError{code: http.StatusBadGateway, msg: "gateway refused",
			detail: fmt.Sprintf("gateway %s answered %s: %s", out.Gateway, resp.Status, bytes.TrimSpace(body))}
	}
	var g struct {
		Connected bool      `json:"connected"`
		Lines     []LogLine `json:"lines"`
	}
	if err := json.Unmarshal(body, &g); err != nil {
		return &httpError{code: http.StatusBadGateway, msg: "gateway answer malformed", detail: err.Error()}
	}
	out.Connected = g.Connected
	if g.Lines != nil {
		out.Lines = g.Lines
	}
	if len(out.Lines) == 0 {
		out.Note = "no log lines yet: the gateway keeps the lines a device sends while connected"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
