package events

import (
	"fmt"

	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// DeviceAppState maps an application state as a device reports it on the wire to the
// platform's state, the one events and Device status carry. This is the only mapping
// between the two; a state the protocol does not define is an error, never Failed.
func DeviceAppState(s protocol.AppState) (v1.AppState, error) {
	switch s {
	case protocol.StateReceiving:
		return v1.AppTransferring, nil
	case protocol.StateReceived:
		return v1.AppReceived, nil
	case protocol.StateRunning:
		return v1.AppRunning, nil
	case protocol.StateStopped:
		return v1.AppStopped, nil
	case protocol.StateExited:
		return v1.AppExited, nil
	case protocol.StateFailed:
		return v1.AppFailed, nil
	case protocol.StateRemoved:
		return v1.AppRemoved, nil
	}
	return "", fmt.Errorf("device application state %s is not in the protocol", s)
}
