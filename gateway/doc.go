// Package gateway is the long-lived server that holds every device's mutual-TLS
// session, speaks the device protocol (api/protocol) and delivers WebAssembly
// modules to devices, keeping desired state durable so that devices that are offline
// get their applications when they connect.
//
// Hostile connections: the accept loop admits a connection only under the limits on
// unauthenticated (pre-Hello) connections, in total, per source address and in rate
// per source, and refuses the rest at once, before TLS; sessions and pending
// connections together fit the process's file-descriptor limit with a reserve for the
// HTTP side, stores and clients (Limits); accept backs off on EMFILE and other
// temporary errors instead of failing; every HTTP server has timeouts; a registry that
// cannot answer refuses devices. docs/gateway.md has the numbers.
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
