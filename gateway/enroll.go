package gateway

import "net/http"

// Enroller serves POST /enroll (see enrollment.go); nil until configured.
type Enroller struct{ h http.Handler }

// ServeHTTP serves one enrollment request.
func (e *Enroller) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.h.ServeHTTP(w, r) }

func (s *Server) enroller() *Enroller { return s.enroll }
