package main

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits, in runes (Mattermost counts a post's length in runes). Every user-written field is capped by
// the runes its ESCAPED form may occupy, truncation marker included, so that the sum of the caps plus
// the fixed template text of a root post stays under MaxMessageRunes (a test adds them up).
const (
	// MattermostPostLimit is the server's hard limit; a longer message is refused with a 400.
	MattermostPostLimit = 16383
	// MaxMessageRunes bounds every message this file renders, well below MattermostPostLimit.
	MaxMessageRunes = 4000
	// MaxReasonRunes caps the request reason on the root post.
	MaxReasonRunes = 2000
	// MaxReviewReasonRunes caps a review's reason and the resolution reason in thread replies.
	MaxReviewReasonRunes = 1000
	// MaxResolutionSummaryRunes caps the resolution reason repeated on the root post.
	MaxResolutionSummaryRunes = 300
	// MaxNameRunes caps a user, cluster, role, resource or request id.
	MaxNameRunes = 200
	// MaxListRunes caps the whole roles list and the whole resources list ("and N more" included).
	MaxListRunes = 250
	// MaxLinkRunes caps the Web UI link; a longer one is shown as (capped) text.
	MaxLinkRunes = 300
	// maxStateRunes caps an unknown state name echoed in the status line.
	maxStateRunes = 32
	// TruncationMarker ends every field that was cut.
	TruncationMarker = "… (truncated)"
)

// textLineBreak is what a newline in user text becomes: multi-line text stays readable, but since it is
// rendered on one line, no line of user text can ever start a markdown block (heading, quote, list,
// fence, table, setext underline) and every field stays on its own labelled line.
const textLineBreak = " ⏎ "

// wordJoiner (U+2060) is invisible and not a letter, digit or space. The Mattermost server finds
// mentions in the markdown text nodes, split on every rune that is not a letter, digit or one of
// ".-_:@"; the web and mobile apps use ASCII regexps on rendered text. A backslash stops neither: the
// escape is gone by then and "\@channel" is "@channel" again. A word joiner right after '@', '~' or
// '#' breaks the word in both places, so @channel, @user, ~channel and #tag stay plain, readable text.
// The same joiner cuts "scheme:" and "domain.tld" so no autolinker (marked's GFM url rule, commonmark's
// extended autolinks, linkify) can see a URL, www. name or e-mail address.
const wordJoiner = '\u2060'

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

// stateStyle is how one request state looks: the emoji and colour change with the state so that an
// edited root post is visibly different, and outcome is the wording of the final thread reply.
type stateStyle struct {
	emoji    string
	label    string
	color    string
	outcome  string
	byline   bool // the outcome names who resolved it
	resolved bool // the root post shows the resolution reason
}

// styleOf maps a state (any case) to its style; an unknown state is echoed escaped, not hidden.
func styleOf(state string) stateStyle {
	switch s := strings.ToUpper(strings.TrimSpace(state)); s {
	case "PENDING":
		return stateStyle{emoji: "⏳", label: s, color: "#E8A317", outcome: "The request is pending"}
	case "APPROVED":
		return stateStyle{emoji: "✅", label: s, color: "#2EB67D", outcome: "Approved", byline: true, resolved: true}
	case "DENIED":
		return stateStyle{emoji: "❌", label: s, color: "#D0021B", outcome: "Denied", byline: true, resolved: true}
	case "EXPIRED":
		return stateStyle{emoji: "⌛", label: s, color: "#8B8B8B", outcome: "The request expired", resolved: true}
	case "PROMOTED":
		return stateStyle{emoji: "🎉", label: s, color: "#6F42C1", outcome: "Promoted to an access list", byline: true, resolved: true}
	default:
		label := escapeCapped(state, maxStateRunes)
		if label == "" {
			label = "UNKNOWN"
		}
		return stateStyle{emoji: "❔", label: label, color: "#8B8B8B", outcome: "The request is now " + label, resolved: true}
	}
}

// renderRequest is the root post's message and props.
func renderRequest(v requestView) (message string, props map[string]any) {
	st := styleOf(v.State)
	status := st.emoji + " " + st.label
	var b strings.Builder
	b.WriteString("**Access Request**")
	if id := requestIDText(v.ID); id != "" {
		b.WriteString(" " + id)
	}
	field := func(label, value string) {
		if value != "" {
			b.WriteString("\n**" + label + ":** " + value)
		}
	}
	field("Cluster", escapeCapped(v.Cluster, MaxNameRunes))
	field("User", escapeCapped(v.User, MaxNameRunes))
	field("Roles", renderList(v.Roles))
	field("Resources", renderList(v.Resources))
	field("Reason", escapeCapped(v.Reason, MaxReasonRunes))
	if v.Reviews > 0 {
		field("Reviews", strconv.Itoa(v.Reviews))
	}
	field("Status", status)
	if st.resolved {
		field("Resolution reason", escapeCapped(v.ResolveReason, MaxResolutionSummaryRunes))
	}
	if v.Link != "" {
		if linkIsSafe(v.Link) {
			b.WriteString("\n[Review in Teleport](" + v.Link + ")")
		} else {
			field("Link", escapeCapped(v.Link, MaxLinkRunes))
		}
	}
	// Plain []any / map[string]any / string / bool only: what encoding/json gives back when the
	// post is read again, so the fake and the real server compare equal after a round trip.
	props = map[string]any{
		"attachments": []any{map[string]any{
			"color": st.color,
			"text":  status,
			"fields": []any{
				map[string]any{"title": "Reviews", "value": strconv.Itoa(v.Reviews), "short": true},
			},
		}},
		"teleport_request_id": strings.ToValidUTF8(v.ID, "\uFFFD"),
	}
	return b.String(), props
}

// renderReview is the thread reply for one review.
func renderReview(r reviewView) string {
	emoji, verb := "❔", "reviewed"
	switch strings.ToUpper(strings.TrimSpace(r.Verdict)) {
	case "APPROVED":
		emoji, verb = "✅", "approved"
	case "DENIED":
		emoji, verb = "❌", "denied"
	}
	author := "A reviewer"
	if a := escapeCapped(r.Author, MaxNameRunes); a != "" {
		author = "**" + a + "**"
	}
	msg := emoji + " " + author + " " + verb + " the request"
	if reason := escapeCapped(r.Reason, MaxReviewReasonRunes); reason != "" {
		msg += ": " + reason
	}
	if !r.Created.IsZero() {
		msg += " (" + r.Created.UTC().Format(time.RFC3339) + ")"
	}
	return msg
}

// renderResolution is the final thread reply once a request is resolved or expired.
func renderResolution(state, resolver, reason string) string {
	st := styleOf(state)
	msg := st.emoji + " " + st.outcome
	if who := escapeCapped(resolver, MaxNameRunes); who != "" && st.byline {
		msg += " by " + who
	}
	if why := escapeCapped(reason, MaxReviewReasonRunes); why != "" {
		msg += ": " + why
	}
	return msg
}

// escapeText makes user-written text inert markdown: no mentions, links, layout.
// It is capped at MaxReasonRunes, the largest field; callers with a smaller field use escapeCapped.
func escapeText(s string) string { return escapeCapped(s, MaxReasonRunes) }

// requestIDText shows a Teleport request id (a UUID) as code; anything unexpected is escaped text,
// since backslash escapes do not work inside a code span.
func requestIDText(id string) string {
	if id == "" || len(id) > 64 {
		return escapeCapped(id, MaxNameRunes)
	}
	for _, r := range id {
		if !isASCIIAlnumRune(r) && r != '-' {
			return escapeCapped(id, MaxNameRunes)
		}
	}
	return "`" + id + "`"
}

// renderList joins escaped names with ", " within MaxListRunes, ending with "and N more" when cut.
func renderList(items []string) string {
	names := make([]string, 0, len(items))
	for _, it := range items {
		if strings.TrimSpace(it) != "" {
			names = append(names, it)
		}
	}
	more := func(n int) string { return " and " + strconv.Itoa(n) + " more" }
	reserve := utf8.RuneCountInString(more(len(names))) // no count can be longer
	var b strings.Builder
	used := 0
	for i, name := range names {
		s := escapeCapped(name, MaxNameRunes)
		if i > 0 {
			s = ", " + s
		}
		n := utf8.RuneCountInString(s)
		if i < len(names)-1 && used+n+reserve > MaxListRunes || used+n > MaxListRunes {
			b.WriteString(more(len(names) - i))
			break
		}
		b.WriteString(s)
		used += n
	}
	return b.String()
}

// linkIsSafe accepts only a plain http(s) URL that cannot end the markdown link early or carry
// anything the mention parser would read: a conservative ASCII set without ()[]<>@, quotes or spaces.
func linkIsSafe(link string) bool {
	if utf8.RuneCountInString(link) > MaxLinkRunes {
		return false
	}
	for _, r := range link {
		if !isASCIIAlnumRune(r) && !strings.ContainsRune("-._~:/?#&=%+,", r) {
			return false
		}
	}
	// The scheme as written, lower case: url.Parse would accept "HTTP:".
	if !strings.HasPrefix(link, "https://") && !strings.HasPrefix(link, "http://") {
		return false
	}
	u, err := url.Parse(link)
	return err == nil && u.Host != ""
}

// escapeCapped escapes s and keeps the result within limit runes. The cut is made on the normalized
// source runes, before escaping, so an escape is never split; escapeRunes treats the end of its input
// as the marker that follows it (text, not a letter, digit or ';').
func escapeCapped(s string, limit int) string {
	rs, cut := normalizeText(s, limit)
	if !cut {
		if out := escapeRunes(rs); utf8.RuneCountInString(out) <= limit {
			return out
		}
	}
	room := limit - utf8.RuneCountInString(TruncationMarker)
	// Every source rune escapes to at least one rune, and a longer prefix never escapes shorter,
	// so the longest prefix that fits is found by binary search.
	k := sort.Search(min(len(rs), room)+1, func(k int) bool {
		return utf8.RuneCountInString(escapeRunes(rs[:k])) > room
	}) - 1
	return escapeRunes(rs[:k]) + TruncationMarker
}

// normalizeText is s as one clean line: invalid UTF-8 and control characters become U+FFFD, bidi
// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) are dropped so text cannot be made
// to display reversed, tabs become spaces, and each run of line breaks becomes textLineBreak. It stops once
// it holds more than limit runes (cut reports that), so a huge input costs no more than a small one.
func normalizeText(s string, limit int) (rs []rune, cut bool) {
	rs = make([]rune, 0, min(len(s), limit+1))
	lineStart, broken := true, false
	for _, r := range s {
		switch {
		case isTextLineBreak(r):
			lineStart, broken = true, true
			continue
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			continue
		case r == '\t':
			r = ' '
		case unicode.IsControl(r):
			r = utf8.RuneError // range already yields U+FFFD for invalid UTF-8
		}
		if lineStart && unicode.IsSpace(r) {
			continue
		}
		if broken && len(rs) > 0 {
			rs = append(trimTrailingSpaceRunes(rs), []rune(textLineBreak)...)
		}
		lineStart, broken = false, false
		if len(rs) >= limit && !unicode.IsSpace(r) {
			return append(rs, r), true
		}
		rs = append(rs, r)
	}
	return trimTrailingSpaceRunes(rs), false
}

// escapeRunes renders normalized runes so they display as themselves and mean nothing to markdown:
//   - backslash before `*_[]|>#~ (emphasis, code, links, tables, quotes, headings, strikethrough,
//     fences); before '(' that follows ']' (a link target) and ')' that follows leading digits ("1)"),
//     before '-', '+' at the start (list, rule) and '.' after leading digits followed by a space
//     ("1. "). Only characters both Mattermost's marked fork and CommonMark accept as escapes are
//     escaped, so no stray backslash shows; a user's own backslash is doubled unless an ASCII letter or
//     digit follows (marked keeps "\\a" as two backslashes, "\a" as one).
//   - word joiner after '@', '~', '#', after ':' and before '.' when text follows (see wordJoiner),
//     and before a leading '=' (setext underline).
//   - HTML entities for '<' (autolinks and tags, which no backslash stops in marked), '$' (inline
//     LaTeX) and an '&' that starts something entity-like ("&lt;" typed by a user stays "&lt;");
//     both renderers decode them back to the character.
func escapeRunes(rs []rune) string {
	var b strings.Builder
	b.Grow(len(rs) + len(rs)/4)
	leadingDigits := true // every rune before r is an ASCII digit
	for i, r := range rs {
		// What a template puts after the text is unknown here ("**" after "www." makes marked link
		// "www"), so at the end text is assumed to follow, though no letter, digit or ';'.
		next, textFollows := ' ', true
		if i+1 < len(rs) {
			next, textFollows = rs[i+1], !unicode.IsSpace(rs[i+1])
		}
		afterDigits := i > 0 && leadingDigits
		switch {
		case r == '\\' && isASCIIAlnumRune(next):
			b.WriteRune('\\')
		case r == '\\':
			b.WriteString(`\\`)
		case strings.ContainsRune("`*_[]|>", r),
			r == '(' && i > 0 && rs[i-1] == ']',
			r == ')' && afterDigits,
			(r == '-' || r == '+') && i == 0,
			r == '.' && afterDigits && !textFollows:
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '#' || r == '~':
			b.WriteRune('\\')
			b.WriteRune(r)
			b.WriteRune(wordJoiner)
		case r == '@', r == ':' && textFollows:
			b.WriteRune(r)
			b.WriteRune(wordJoiner)
		case r == '.' && textFollows, r == '=' && i == 0:
			b.WriteRune(wordJoiner)
			b.WriteRune(r)
		case r == '<':
			b.WriteString("&lt;")
		case r == '$':
			b.WriteString("&#36;")
		case r == '&' && entityFollows(rs[i+1:]):
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
		leadingDigits = leadingDigits && r >= '0' && r <= '9'
	}
	return b.String()
}

// isTextLineBreak is every rune that ends a line for some markdown or text renderer.
func isTextLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// entityFollows reports whether rs starts like the rest of an HTML character reference ("#?[0-9A-Za-z]+;").
func entityFollows(rs []rune) bool {
	if len(rs) > 0 && rs[0] == '#' {
		rs = rs[1:]
	}
	for i, r := range rs {
		if r == ';' {
			return i > 0
		}
		if !isASCIIAlnumRune(r) || i > 32 {
			return false
		}
	}
	return false
}

func isASCIIAlnumRune(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

func trimTrailingSpaceRunes(rs []rune) []rune {
	for len(rs) > 0 && unicode.IsSpace(rs[len(rs)-1]) {
		rs = rs[:len(rs)-1]
	}
	return rs
}
