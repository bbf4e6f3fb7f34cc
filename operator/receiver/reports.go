package receiver

import (
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// maxReports bounds status.gatewayReports (the CRD's MaxItems).
const maxReports = 64

// setReport records summary d in st.GatewayReports and reports whether the status
// changed. A report of a lower generation of the same gateway and module, or an older
// one of the same generation ((epoch, seq) order), is ignored; so is one whose counts
// equal what is recorded. Reports of modules that are neither rolled out, built nor the
// previous good one are dropped, and the oldest go when the list is full.
func setReport(st *v1.ApplicationStatus, d *events.DeploymentSummaryData, now metav1.Time) bool {
	entry := v1.GatewayReport{
		Gateway: d.Gateway.String(), Digest: d.Digest, Generation: d.Application.Generation,
		Devices: int32(d.Devices), Succeeded: int32(d.Succeeded), Failed: int32(d.Failed),
		Epoch: metav1.NewTime(d.Epoch), Seq: d.Seq, ReportedAt: &now,
	}
	if len(d.FailuresByType) > 0 {
		entry.FailuresByType = make(map[v1.FailureType]int32, len(d.FailuresByType))
		for t, n := range d.FailuresByType {
			entry.FailuresByType[t] = int32(n)
		}
	}
	if len(d.FirstFailures) > 0 {
		f := d.FirstFailures[0]
		entry.FirstFailure = f.Device + ": " + f.Message
		if len(entry.FirstFailure) > 1024 {
			entry.FirstFailure = entry.FirstFailure[:1024]
		}
	}
	reports := st.GatewayReports
	i := slices.IndexFunc(reports, func(r v1.GatewayReport) bool { return r.Gateway == entry.Gateway && r.Digest == entry.Digest })
	if i >= 0 {
		old := reports[i]
		switch {
		case entry.Generation < old.Generation:
			return false
		case entry.Generation == old.Generation && !newerSummary(entry, old):
			return false
		case entry.Generation == old.Generation && sameCounts(entry, old):
			return false
		}
		reports = slices.Delete(slices.Clone(reports), i, i+1)
	}
	keep := func(dg digest.Digest) bool {
		return dg == entry.Digest || dg == st.PreviousGoodDigest || (st.Rollout != nil && dg == st.Rollout.Digest) ||
			(st.Build != nil && dg == st.Build.Digest)
	}
	reports = slices.DeleteFunc(slices.Clone(reports), func(r v1.GatewayReport) bool { return !keep(r.Digest) })
	reports = append(reports, entry)
	for len(reports) > maxReports {
		oldest := 0
		for j, r := range reports {
			if r.ReportedAt.Before(reports[oldest].ReportedAt) {
				oldest = j
			}
		}
		reports = slices.Delete(reports, oldest, oldest+1)
	}
	slices.SortFunc(reports, func(a, b v1.GatewayReport) int {
		if a.Gateway != b.Gateway {
			if a.Gateway < b.Gateway {
				return -1
			}
			return 1
		}
		if a.Digest < b.Digest {
			return -1
		}
		if a.Digest > b.Digest {
			return 1
		}
		return 0
	})
	st.GatewayReports = reports
	return true
}

// newerSummary reports whether a was sent after b by the same gateway.
func newerSummary(a, b v1.GatewayReport) bool {
	if !a.Epoch.Equal(&b.Epoch) {
		return b.Epoch.Before(&a.Epoch)
	}
	return a.Seq > b.Seq
}

func sameCounts(a, b v1.GatewayReport) bool {
	return a.Devices == b.Devices && a.Succeeded == b.Succeeded && a.Failed == b.Failed &&
		a.FirstFailure == b.FirstFailure && maps.Equal(a.FailuresByType, b.FailuresByType)
}
