package gateway

import (
	"net"
	"net/netip"
	"time"
)

// Admission: the accept loop decides whether a new connection may start its TLS
// handshake before it spends a goroutine on it. Until its Hello is checked a
// connection is unauthenticated ("pending"): anyone can open one, so they are bounded
// in total, per source address, and optionally in rate per source. A refused
// connection is closed at once, counted by reason and logged at most once per period.

// minBucketSweep is the size of the rate buckets' map from which it is swept of
// buckets that have refilled (and so are the same as no bucket).
const minBucketSweep = 1024

// bucket is a source's token bucket: tokens at the time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// sourceOf is the address that per-source limits count by: the IPv4 address, or the
// /64 an IPv6 address belongs to (one host commonly holds a whole /64).
func sourceOf(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// admitLocked returns why a connection from src may not start a handshake now, or
// "" after counting it as pending. s.mu is held.
func (s *Server) admitLocked(src netip.Addr, now time.Time) CloseReason {
	switch {
	case s.pending >= s.cfg.maxPending:
		return ReasonMaxPending
	case len(s.sessions)+s.pending >= s.cfg.maxSessions:
		return ReasonMaxSessions
	case s.cfg.maxPendingPerSource > 0 && s.bySource[src] >= s.cfg.maxPendingPerSource:
		return ReasonSourcePending
	case s.cfg.sourceRate > 0 && !s.takeTokenLocked(src, now):
		return ReasonSourceRate
	}
	s.pending++
	s.bySource[src]++
	return ""
}

// releaseLocked ends a pending connection of src. s.mu is held.
func (s *Server) releaseLocked(src netip.Addr) {
	s.pending--
	if n := s.bySource[src] - 1; n > 0 {
		s.bySource[src] = n
	} else {
		delete(s.bySource, src)
	}
}

// takeTokenLocked takes one token of src's bucket if it has one. s.mu is held.
func (s *Server) takeTokenLocked(src netip.Addr, now time.Time) bool {
	burst := float64(s.cfg.sourceBurst)
	b, ok := s.buckets[src]
	if !ok {
		if len(s.buckets) >= s.bucketSweep {
			s.sweepBucketsLocked(now)
		}
		b = bucket{tokens: burst, at: now}
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*s.cfg.sourceRate)
	b.at = now
	if b.tokens < 1 {
		s.buckets[src] = b
		return false
	}
	b.tokens--
	s.buckets[src] = b
	return true
}

// sweepBucketsLocked forgets the buckets that are full again, which bounds the map by
// the sources seen within burst/rate seconds. s.mu is held.
func (s *Server) sweepBucketsLocked(now time.Time) {
	burst := float64(s.cfg.sourceBurst)
	for src, b := range s.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*s.cfg.sourceRate >= burst {
			delete(s.buckets, src)
		}
	}
	s.bucketSweep = max(minBucketSweep, 2*len(s.buckets))
}

// admit starts a goroutine for the handshake of c, or refuses c at once. It reports
// false when the server is shutting down.
func (s *Server) admit(c net.Conn) bool {
	src := sourceOf(c.RemoteAddr())
	s.mu.Lock()
	reason := s.admitLocked(src, time.Now())
	s.mu.Unlock()
	if reason != "" {
		_ = c.Close()
		s.m.closes.WithLabelValues(string(reason)).Inc()
		if ok, held := s.logLimit.allow("refused/" + string(reason)); ok {
			s.log.Warn("connection refused", "remote", c.RemoteAddr().String(), "reason", reason, "suppressed", held)
		}
		return true
	}
	s.m.pending.Inc()
	if !s.tr.Go(func() { s.serveConn(c, src) }) {
		_ = c.Close()
		s.mu.Lock()
		s.releaseLocked(src)
		s.mu.Unlock()
		s.m.pending.Dec()
		return false
	}
	return true
}
