// Package eventauth authenticates the senders of CloudEvents and says which of them may
// send which event types, the way Knative Eventing's sender identity does: every
// request carries a bearer token the Kubernetes apiserver issued to a ServiceAccount for
// one audience (the receiver), and the receiver checks it with a TokenReview.
//
// A receiver holds a Policy: its audience, a Verifier and, per event type, the
// identities allowed to send it. A request without a token is refused with 401, one
// whose sender may not send that type with 403; both are counted and logged with
// their reason. A sender holds a TokenSource (TokenRequest against the apiserver, or
// the projected token file Kubernetes mounts into a pod) and attaches its tokens with
// Header or Transport.
package eventauth
