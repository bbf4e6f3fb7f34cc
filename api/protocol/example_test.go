package protocol_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/wasmbed/wasmbed/api/protocol"
)

// A device opens the session with Hello; the gateway answers Welcome and both
// sides switch to the negotiated frame limit.
func Example() {
	var wire bytes.Buffer
	device := protocol.NewWriter(&wire, protocol.DefaultMaxFrame)
	gateway := protocol.NewReader(&wire, protocol.DefaultMaxFrame)

	_ = device.WriteMessage(&protocol.Hello{
		DeviceID: "default/stm32-01", Board: "stm32f407-discovery", Firmware: "0.1.0",
		Caps: protocol.Capabilities{RAM: 196608, Flash: 1048576, MaxModule: 65536, ABI: 1, MaxFrame: 4096},
	})
	m, err := gateway.ReadMessage()
	if err != nil {
		fmt.Println(err)
		return
	}
	hello := m.(*protocol.Hello)
	limit := min(int(hello.Caps.MaxFrame), 8192)
	gateway.SetMaxBody(limit)
	fmt.Println(m.Type(), hello.Board, limit, protocol.ChunkSizeFor(limit))
	// Output: hello stm32f407-discovery 4096 2048
}

// Decoding failures are *protocol.Error values that can be matched by code and
// sent back to the peer as an Error message.
func ExampleError() {
	_, err := protocol.DecodeFrame([]byte{1, 0, 4, 0xa1, 0x00, 0x18, 0x63}, 0)
	fmt.Println(errors.Is(err, protocol.CodeUnknownMessage))
	var pe *protocol.Error
	if errors.As(err, &pe) {
		frame, _ := protocol.EncodeFrame(pe)
		fmt.Printf("%v\n%x\n", pe, frame)
	}
	// Output:
	// true
	// unknown_message: unknown message type 99
	// 01001ea3000f01040277756e6b6e6f776e206d6573736167652074797065203939
}
