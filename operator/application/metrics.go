package application

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Rollout policy metrics, served with controller-runtime's on the operator's metrics
// address.
var (
	// policyStarts counts the devices a rollout policy asked dispatch to start, by kind:
	// first (a first attempt), retry (after a failure) or again (a request repeated
	// because no report came).
	policyStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wasmbed_rollout_policy_device_starts_total",
		Help: "Devices a rollout policy asked to start, by kind (first, retry, again).",
	}, []string{"kind"})
	// policyStops counts rollouts a policy ended, by the RolledOut reason.
	policyStops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wasmbed_rollout_policy_stops_total",
		Help: "Rollouts a policy stopped, by reason (RolloutFailed, ScheduleEnded, CannotFinish).",
	}, []string{"reason"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(policyStarts, policyStops)
}
