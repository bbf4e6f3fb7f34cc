package kube_test

import "k8s.io/apimachinery/pkg/types"

func keyOf(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}
