package main

// SKELETON: the message helper replaces this file, keeping these declarations.

import "time"

// requestView is what a root post shows about an access request.
type requestView struct {
	ID            string
	Cluster       string
	User          string
	Roles         []string
	Resources     []string // requested resource ids, rendered as text
	Reason        string
	State         string // PENDING, APPROVED, DENIED, EXPIRED, PROMOTED
	ResolveReason string
	Reviews       int    // reviews so far
	Link          string // https://<proxy>/web/requests/<id>, or "" when unknown
}

// reviewView is one review, posted as a thread reply.
type reviewView struct {
	Author  string
	Verdict string // APPROVED or DENIED
	Reason  string
	Created time.Time
}

// renderRequest is the root post's message and props.
func renderRequest(v requestView) (message string, props map[string]any) { panic("todo") }

// renderReview is the thread reply for one review.
func renderReview(r reviewView) string { panic("todo") }

// renderResolution is the final thread reply once a request is resolved or expired.
func renderResolution(state, resolver, reason string) string { panic("todo") }

// escapeText makes user-written text inert markdown: no mentions, links, layout.
func escapeText(s string) string { panic("todo") }
