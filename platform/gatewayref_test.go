package platform

import "testing"

func TestGatewayRefIsGatewayName(t *testing.T) {
	if got := gatewayRef.String(); got != GatewayName {
		t.Fatalf("gatewayRef = %s, GatewayName = %s", got, GatewayName)
	}
}
