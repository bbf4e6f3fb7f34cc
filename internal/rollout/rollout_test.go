package rollout_test

import (
	"testing"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/rollout"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStepSize(t *testing.T) {
	canary := v1.RolloutSpec{Strategy: v1.RolloutCanary, Steps: []v1.CanaryStep{{Percent: 1}, {Percent: 33}, {Percent: 100}}}
	cases := []struct {
		spec v1.RolloutSpec
		step int32
		n    int
		want int
		err  bool
	}{
		{v1.RolloutSpec{}, 0, 50, 50, false},
		{v1.RolloutSpec{}, 1, 50, 0, true},
		{canary, 0, 50, 1, false}, // ceil(0.5): a canary step always covers a device
		{canary, 1, 50, 17, false},
		{canary, 2, 50, 50, false},
		{canary, 0, 0, 0, false},
		{canary, 3, 50, 0, true},
		{canary, -1, 50, 0, true},
	}
	for _, tc := range cases {
		got, err := rollout.StepSize(tc.spec, tc.step, tc.n)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("StepSize(%v, %d, %d) = %d, %v; want %d", tc.spec.Strategy, tc.step, tc.n, got, err, tc.want)
		}
	}
}

func TestSortIsStablePerApplication(t *testing.T) {
	mk := func(names ...string) []v1.Device {
		out := make([]v1.Device, len(names))
		for i, n := range names {
			out[i] = v1.Device{ObjectMeta: metav1.ObjectMeta{Name: n}}
		}
		return out
	}
	a := mk("d1", "d2", "d3", "d4", "d5", "d6")
	b := mk("d6", "d5", "d4", "d3", "d2", "d1")
	rollout.Sort("ns", "app", a)
	rollout.Sort("ns", "app", b)
	for i := range a {
		if a[i].Name != b[i].Name {
			t.Fatalf("order depends on input order: %v vs %v", a, b)
		}
	}
	c := mk("d1", "d2", "d3", "d4", "d5", "d6")
	rollout.Sort("ns", "other-app", c)
	same := true
	for i := range a {
		same = same && a[i].Name == c[i].Name
	}
	if same {
		t.Errorf("two applications got the same canary order")
	}
}
