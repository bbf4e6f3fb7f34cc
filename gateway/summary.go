package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/internal/tracing"
)

// A gateway sums up what its devices report of each Application in
// dev.wasmbed.deployment.summarized events, so that the operator counts a rollout from a
// few summaries instead of a Device write per device (docs/gateway.md, "Summaries").

// DefaultSummaryInterval is how long a change of an Application's counts waits before its
// summary is sent: the changes of that interval go out as one event.
const DefaultSummaryInterval = 250 * time.Millisecond

// DefaultSummaryResync is how often every summary is sent again, changed or not, so
// that one lost on the way is replaced.
const DefaultSummaryResync = time.Minute

// lastResult is the last result a device reported of an Application: which variant of
// the desired state it was about, and how it went.
type lastResult struct {
	uid        string
	generation int64
	digest     digest.Digest
	ok         bool
	failure    v1.FailureType
	message    string
}

// about reports whether r is a result of variant d.
func (r lastResult) about(d DesiredApp) bool {
	return r.uid == d.UID && r.generation == d.Generation && r.digest == d.Digest
}

// appKey names an Application: "<namespace>/<name>".
type appKey string

// summaries keeps the last result of every device per Application and which
// Applications changed since their last summary.
type summaries struct {
	mu      sync.Mutex
	results map[appKey]map[string]lastResult
	dirty   map[appKey]bool
	epoch   time.Time
	seq     int64
}

func newSummaries() *summaries {
	return &summaries{results: map[appKey]map[string]lastResult{}, dirty: map[appKey]bool{}, epoch: time.Now().UTC().Truncate(time.Second)}
}

// record keeps a device's result of variant d; Removed results end its entry.
func (s *summaries) record(d DesiredApp, device string, ok bool, state v1.AppState, failure v1.FailureType, msg string) {
	key := appKey(d.Subject())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty[key] = true
	if d.Remove || state == v1.AppRemoved {
		delete(s.results[key], device)
		return
	}
	m := s.results[key]
	if m == nil {
		m = map[string]lastResult{}
		s.results[key] = m
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	m[device] = lastResult{uid: d.UID, generation: d.Generation, digest: d.Digest, ok: ok, failure: failure, message: msg}
}

// touch marks an Application's counts as changed (its desired state changed).
func (s *summaries) touch(namespace, name string) {
	s.mu.Lock()
	s.dirty[appKey(namespace+"/"+name)] = true
	s.mu.Unlock()
}

// take returns the Applications changed since the last call, or all of them.
func (s *summaries) take(all bool) []appKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []appKey
	if all {
		for k := range s.results {
			s.dirty[k] = true
		}
	}
	for k := range s.dirty {
		out = append(out, k)
	}
	clear(s.dirty)
	slices.Sort(out)
	return out
}

// summarize counts, for one variant and the devices that should have it, what they last
// reported.
func (s *summaries) summarize(gw v1.Ref, v DesiredVariant) *events.DeploymentSummaryData {
	d := v.App
	out := &events.DeploymentSummaryData{
		Application: events.AppRef{Namespace: d.Namespace, Name: d.Name, Generation: d.Generation, UID: d.UID},
		Gateway:     gw, Digest: d.Digest, Epoch: s.epoch, Devices: len(v.Devices),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	out.Seq = s.seq
	results := s.results[appKey(d.Subject())]
	for _, dev := range v.Devices { // in name order
		r, ok := results[dev]
		if !ok || !r.about(d) {
			continue
		}
		if r.ok {
			out.Succeeded++
			continue
		}
		out.Failed++
		if r.failure != "" {
			if out.FailuresByType == nil {
				out.FailuresByType = map[v1.FailureType]int{}
			}
			out.FailuresByType[r.failure]++
			if len(out.FirstFailures) < events.MaxSummaryFailures {
				out.FirstFailures = append(out.FirstFailures, events.DeviceFailure{Device: dev, Failure: r.failure, Message: r.message})
			}
		}
	}
	return out
}

// forget drops what is kept of an Application no device should have any more.
func (s *summaries) forget(key appKey) {
	s.mu.Lock()
	delete(s.results, key)
	s.mu.Unlock()
}

// reportSummaries sends the summaries of changed Applications every summary interval,
// and all of them every resync, until the server stops.
func (s *Server) reportSummaries() {
	t := time.NewTicker(s.cfg.summaryInterval)
	defer t.Stop()
	resync := time.Now()
	for {
		select {
		case <-s.baseCtx.Done():
			return
		case <-t.C:
		}
		all := s.cfg.summaryResync > 0 && time.Since(resync) >= s.cfg.summaryResync
		if all {
			resync = time.Now()
		}
		s.sendSummaries(s.sum.take(all))
	}
}

// sendSummaries sends one summary per variant of each Application in keys.
func (s *Server) sendSummaries(keys []appKey) {
	for _, key := range keys {
		ns, name, _ := strings.Cut(string(key), "/")
		ctx, cancel := context.WithTimeout(s.baseCtx, 10*time.Second)
		variants, err := s.desired.Variants(ctx, ns, name)
		cancel()
		if err != nil {
			s.log.Error("read desired state for a summary", "application", key, "err", err)
			s.sum.touch(ns, name) // try again next time
			continue
		}
		if len(variants) == 0 {
			s.sum.forget(key)
			continue
		}
		for _, v := range variants {
			if v.App.Remove || v.App.Namespace != ns {
				continue
			}
			data := s.sum.summarize(s.ref, v)
			e, err := events.New(events.DeploymentSummarized, s.source, v.App.Subject(), data)
			if err != nil {
				s.log.Error("build event", "type", events.DeploymentSummarized, "application", key, "err", err)
				continue
			}
			// One gateway's summaries of one Application stay in order.
			e.SetExtension(events.ExtPartitionKey, s.cfg.name+"/"+v.App.Subject())
			if v.App.TraceParent != "" {
				tracing.Inject(tracing.FromTraceParent(context.Background(), v.App.TraceParent), &e)
			}
			s.cfg.sink.Emit(e)
			s.m.summaries.Inc()
		}
	}
}
