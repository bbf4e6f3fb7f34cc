// Package gateway is the long-lived server that holds every device's mutual-TLS
// session, speaks the device protocol (api/protocol) and delivers WebAssembly
// modules to devices, keeping desired state durable so that devices that are offline
// get their applications when they connect.
//
// Connection model: one goroutine reads each session (it also did the TLS handshake
// and Hello in a short-lived goroutine of its own, so its stack stays small); a writer
// goroutine exists only while a session has frames queued. A session whose queue
// overflows is closed as a slow consumer instead of stalling anyone. Every session ends
// once, with a typed CloseReason that is counted, logged and reported in a
// device.disconnected event.
//
// Lock order: Server.mu before session.mu; nothing holds session.mu while calling into
// the Server, the event sink or the network.
package gateway
