package main

import (
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// wj is the word joiner escapeText puts after '@', '~', '#', ':' and before '.'.
const wj = "\u2060"

// nastyUserTexts are user texts that try every way out of a field: mentions, channel links, links,
// autolinks, block syntax, HTML, emphasis, control and bidi characters, broken UTF-8, sheer size.
var nastyUserTexts = []string{
	"@channel", "@ALL", "@here", "hey @alice.smith", "(@here)", "@@all", "a@channel", "-@all", "x:@here",
	"~town-square", "#hashtag", "alice@example.com", "mailto:alice@example.com",
	"[click](https://evil)", "![x](https://evil/x.png)", "[a]: https://evil", "[x][1]",
	"<https://evil>", "<alice@example.com>", "<www.evil.example>", "https://evil.example/path",
	"HTTP://EVIL.EXAMPLE", "www.evil.example", "WWW1.evil.example", "evil.com/path", "tel:+123",
	"# heading", "###### h6", "> quote", "- list", "+ list", "* list", "1. list", "1) list", "123456789. x",
	"| a | b |", "a | b\n--|--\nc | d", "```\ncode", "~~~", "~~strike~~", "---", "***", "___", "===",
	"title\n===", "    indented code", "\tindented", "<img src=x>", "<script>alert(1)</script>", "<!-- c -->",
	"**bold**", "_em_", "`code`", "$x^2$", "&lt;b&gt;", "&#64;channel", "R&D", "a\\", "\\*", "\\\\a",
	"line1\nline2", "line1\r\n\r\n# line2", "a\u2028> b\u2029- c\u0085d\ve\ff", "\x00\x1b[31m",
	"\u202etxt", "\u2066x\u2069", "\xff\xfe bad utf8 \xc3", ":smile: :)", "e.g. 1.5",
	strings.Repeat("@all ", 3000), strings.Repeat("x", 100000),
}

// mentionRE is the brief's check for a live mention: '@' right before a name character.
var mentionRE = regexp.MustCompile(`(?i)(^|[^\p{L}\p{N}_\\])@[a-z0-9]`)

// blockStartRE matches a line that markdown (marked or CommonMark) would start a block with.
var blockStartRE = regexp.MustCompile("^(?: {0,3}(?:[#>*+=|<~`_-]|\\d{1,9}[.)](?:\\s|$)|\\[[^\\]]*\\]:)| {4}|\\t)")

// renderedAs decodes escaped text the way Mattermost's renderers show it: backslash escapes of the
// characters marked accepts (a backslash pair only before a non-word character), the three entities
// escapeText writes, word joiners dropped, the line-break glyph back to a newline.
func renderedAs(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && i+1 < len(rs) && strings.ContainsRune("`*{}[]()#+-.!_>|~", rs[i+1]):
			b.WriteRune(rs[i+1])
			i++
		case r == '\\' && i+1 < len(rs) && rs[i+1] == '\\' && (i+2 == len(rs) || !isMarkedWordChar(rs[i+2])):
			b.WriteRune('\\')
			i++
		case r == '&':
			rest := string(rs[i:min(i+5, len(rs))])
			decoded := false
			for ent, ch := range map[string]string{"&lt;": "<", "&amp;": "&", "&#36;": "$"} {
				if strings.HasPrefix(rest, ent) {
					b.WriteString(ch)
					i += len(ent) - 1
					decoded = true
					break
				}
			}
			if !decoded {
				b.WriteRune(r)
			}
		case r == '\u2060':
		default:
			b.WriteRune(r)
		}
	}
	return strings.ReplaceAll(b.String(), textLineBreak, "\n")
}

func isMarkedWordChar(r rune) bool { return isASCIIAlnumRune(r) || r == '_' }

// readableRunes keeps the runes a reader compares: graphic, non-space, not the replacement or ⏎ glyph.
func readableRunes(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == utf8.RuneError || r == '⏎' {
			return -1
		}
		return r
	}, s)
}

// unescapedSpecial reports the first markdown-significant rune that is not backslash-escaped.
func unescapedSpecial(s string) (rune, bool) {
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		if rs[i] == '\\' && i+1 < len(rs) && (rs[i+1] != '\\' || i+2 == len(rs) || !isMarkedWordChar(rs[i+2])) {
			i++
			continue
		}
		if strings.HasPrefix(string(rs[i:min(i+5, len(rs))]), "&#36;") {
			i += 4
			continue
		}
		if strings.ContainsRune("`*_[]|>#~<$", rs[i]) {
			return rs[i], true
		}
	}
	return 0, false
}

var (
	// liveMarkRE finds '@', '~' or '#' (other than in "&#36;") without the word joiner after it.
	liveMarkRE = regexp.MustCompile(`[@~]([^\x{2060}]|$)|(^|[^&])#([^\x{2060}]|$)`)
	entityRE   = regexp.MustCompile(`&#?[0-9A-Za-z]+;`)
	// domainRE finds what an autolinker reads as a URL: www., label.tld or scheme:x.
	domainRE = regexp.MustCompile(`(?i)www\d{0,3}\.(\S|$)|[\p{L}\p{N}._-]\.[\p{L}\p{N}]|:[/\p{L}\p{N}%]`)
)

// assertInert checks what must hold for any escaped user text: inert, and shown faithfully.
func assertInert(t testing.TB, in, out string) {
	t.Helper()
	if why := inertProblem(out); why != "" {
		t.Fatalf("escapeText(%.80q) = %.200q: %s", in, out, why)
	}
	if !showsFaithfully(in, out) {
		t.Fatalf("escapeText(%.80q) = %.200q displays as %.200q", in, out, renderedAs(out))
	}
}

// inertProblem says what in escaped text could still act as markdown or a mention, or "".
func inertProblem(out string) string {
	if !utf8.ValidString(out) {
		return "invalid UTF-8"
	}
	if mentionRE.MatchString(out) || liveMarkRE.MatchString(out) {
		return "a mention, channel link or hashtag is live"
	}
	if strings.Contains(out, "](") || strings.Contains(out, "://") || domainRE.MatchString(out) {
		return "link syntax, scheme or domain left intact"
	}
	for _, m := range entityRE.FindAllString(out, -1) {
		if m != "&lt;" && m != "&amp;" && m != "&#36;" {
			return "raw entity " + m
		}
	}
	if r, ok := unescapedSpecial(out); ok {
		return "unescaped " + string(r)
	}
	if blockStartRE.MatchString(out) {
		return "starts a markdown block"
	}
	for _, r := range out {
		if isTextLineBreak(r) || unicode.IsControl(r) || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 {
			return "line break, control or bidi character " + strconv.QuoteRune(r)
		}
	}
	if n := utf8.RuneCountInString(out); n > MaxReasonRunes {
		return "too long: " + strconv.Itoa(n)
	}
	return ""
}

// showsFaithfully reports whether out shows what in says: all of it, or a prefix and the truncation marker.
func showsFaithfully(in, out string) bool {
	want := readableRunes(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(in, "")))
	if readableRunes(renderedAs(out)) == want {
		return true
	}
	cut, ok := strings.CutSuffix(out, TruncationMarker)
	return ok && strings.HasPrefix(want, readableRunes(renderedAs(cut)))
}

func TestEscapeTextExact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"@channel", "@" + wj + "channel"},
		{"@ALL", "@" + wj + "ALL"},
		{"hey @alice.smith", "hey @" + wj + "alice" + wj + ".smith"},
		{"(@here)", "(@" + wj + "here)"},
		{"~town-square", `\~` + wj + "town-square"},
		{"[click](https://evil)", `\[click\]\(https:` + wj + "//evil)"},
		{"![x](https://evil/x.png)", `!\[x\]\(https:` + wj + "//evil/x" + wj + ".png)"},
		{"<https://evil>", "&lt;https:" + wj + `//evil\>`},
		{"https://evil.example/path", "https:" + wj + "//evil" + wj + ".example/path"},
		{"www.evil.example", "www" + wj + ".evil" + wj + ".example"},
		{"# heading", `\#` + wj + " heading"},
		{"> quote", `\> quote`},
		{"- list", `\- list`},
		{"1. list", `1\. list`},
		{"1) list", `1\) list`},
		{"| a | b |", `\| a \| b \|`},
		{"```\ncode", "\\`\\`\\` ⏎ code"},
		{"~~~", `\~` + wj + `\~` + wj + `\~` + wj},
		{"<img src=x>", `&lt;img src=x\>`},
		{"**bold**", `\*\*bold\*\*`},
		{"line1\nline2", "line1 ⏎ line2"},
		{"  a  \r\n\r\n\t b \n", "a ⏎ b"},
		{"\x00\x1b[31m", "\uFFFD\uFFFD\\[31m"},
		{"\u202etxt\u2069", "txt"},
		{"a\xffb", "a\uFFFDb"},
		{"===", wj + "==="},
		{"R&D &amp; $5", "R&D &amp;amp; &#36;5"},
		{`a\b \* c\`, `a\b \\\* c\\`},
		{"Need it: now. Ok", "Need it: now. Ok"},
		{"ünïcödé 日本語 🎉", "ünïcödé 日本語 🎉"},
		{"", ""},
	} {
		if got := escapeText(tc.in); got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeTextInvariants(t *testing.T) {
	for _, in := range nastyUserTexts {
		assertInert(t, in, escapeText(in))
	}
}

func TestEscapeTextTruncation(t *testing.T) {
	marker := []rune(TruncationMarker)
	t.Run("100k reason", func(t *testing.T) {
		got := escapeText(strings.Repeat("a", 100000))
		want := strings.Repeat("a", MaxReasonRunes-len(marker)) + TruncationMarker
		if got != want {
			t.Fatalf("got %d runes ending %q, want exactly %d runes", utf8.RuneCountInString(got), got[len(got)-20:], MaxReasonRunes)
		}
	})
	t.Run("rune boundary", func(t *testing.T) {
		got := escapeText(strings.Repeat("é", 5000))
		if !utf8.ValidString(got) || got != strings.Repeat("é", MaxReasonRunes-len(marker))+TruncationMarker {
			t.Fatalf("got %.40q…", got)
		}
	})
	t.Run("escapes are never split", func(t *testing.T) {
		got := escapeText(strings.Repeat("$", 100000))
		units := (MaxReasonRunes - len(marker)) / len("&#36;")
		if got != strings.Repeat("&#36;", units)+TruncationMarker {
			t.Fatalf("got %d runes ending %q", utf8.RuneCountInString(got), got[len(got)-30:])
		}
	})
	t.Run("backslash at the cut", func(t *testing.T) {
		// The backslash would be the last rune kept; before the marker it needs doubling, which does
		// not fit, so the cut moves before it rather than leaving a backslash to escape the marker.
		in := strings.Repeat("a", MaxReasonRunes-len(marker)-1) + `\b` + strings.Repeat("c", 100)
		got := escapeText(in)
		if got != strings.Repeat("a", MaxReasonRunes-len(marker)-1)+TruncationMarker {
			t.Fatalf("got ending %q", got[len(got)-30:])
		}
	})
	t.Run("exact fit is not marked", func(t *testing.T) {
		in := strings.Repeat("b", MaxNameRunes)
		if got := escapeCapped(in, MaxNameRunes); got != in {
			t.Fatalf("a text of exactly the limit was changed: %q", got)
		}
		if got := escapeCapped(in+"   \n ", MaxNameRunes); got != in {
			t.Fatalf("trailing space made it truncated: %q", got)
		}
	})
	for _, limit := range []int{MaxNameRunes, MaxReviewReasonRunes, MaxReasonRunes} {
		for _, unit := range []string{"a", "@", "#x", "$", "&a;", "\\", "é", "1.", "a\n"} {
			got := escapeCapped(strings.Repeat(unit, 5000), limit)
			if n := utf8.RuneCountInString(got); n > limit || !strings.HasSuffix(got, TruncationMarker) {
				t.Errorf("limit %d, unit %q: %d runes, suffix %q", limit, unit, n, got[max(0, len(got)-20):])
			}
		}
	}
}

// sampleRequestView is a request with every field set, for the golden test and the state tests.
func sampleRequestView(state string) requestView {
	return requestView{
		ID:            "0b9f6a9e-1d2c-4c56-a2d4-6f3b7c2f9e11",
		Cluster:       "example.com",
		User:          "alice",
		Roles:         []string{"editor", "db_admin"},
		Resources:     []string{"/example.com/node/8f0c"},
		Reason:        "Fix INC-42 for @bob\nsee https://wiki.example/inc",
		State:         state,
		ResolveReason: "ok, go ahead",
		Reviews:       2,
		Link:          "https://teleport.example.com/web/requests/0b9f6a9e-1d2c-4c56-a2d4-6f3b7c2f9e11",
	}
}

func TestRenderRequestGolden(t *testing.T) {
	msg, props := renderRequest(sampleRequestView("APPROVED"))
	want := "**Access Request** `0b9f6a9e-1d2c-4c56-a2d4-6f3b7c2f9e11`\n" +
		"**Cluster:** example" + wj + ".com\n" +
		"**User:** alice\n" +
		"**Roles:** editor, db\\_admin\n" +
		"**Resources:** /example" + wj + ".com/node/8f0c\n" +
		"**Reason:** Fix INC-42 for @" + wj + "bob ⏎ see https:" + wj + "//wiki" + wj + ".example/inc\n" +
		"**Reviews:** 2\n" +
		"**Status:** ✅ APPROVED\n" +
		"**Resolution reason:** ok, go ahead\n" +
		"[Review in Teleport](https://teleport.example.com/web/requests/0b9f6a9e-1d2c-4c56-a2d4-6f3b7c2f9e11)"
	if msg != want {
		t.Errorf("message:\n%s\nwant:\n%s", msg, want)
	}
	wantProps := map[string]any{
		"attachments": []any{map[string]any{
			"color": "#2EB67D",
			"text":  "✅ APPROVED",
			"fields": []any{
				map[string]any{"title": "Reviews", "value": "2", "short": true},
			},
		}},
		"teleport_request_id": "0b9f6a9e-1d2c-4c56-a2d4-6f3b7c2f9e11",
	}
	if !reflect.DeepEqual(props, wantProps) {
		t.Errorf("props = %#v\nwant %#v", props, wantProps)
	}
	assertPropsRoundTrip(t, props)
}

// assertPropsRoundTrip checks that props survive JSON unchanged, as they will through Mattermost.
func assertPropsRoundTrip(t testing.TB, props map[string]any) {
	t.Helper()
	data, err := json.Marshal(props)
	if err != nil {
		t.Fatalf("props do not encode: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("props do not decode: %v", err)
	}
	if !reflect.DeepEqual(back, props) {
		t.Fatalf("props change in a JSON round trip:\n%#v\n%#v", props, back)
	}
}

func TestRenderRequestStates(t *testing.T) {
	colors := map[string]string{}
	for _, tc := range []struct {
		state, status, color string
		resolution, distinct bool // distinct: one of the five states, each with its own colour
	}{
		{"PENDING", "⏳ PENDING", "#E8A317", false, true},
		{"APPROVED", "✅ APPROVED", "#2EB67D", true, true},
		{"DENIED", "❌ DENIED", "#D0021B", true, true},
		{"EXPIRED", "⌛ EXPIRED", "#8B8B8B", true, true},
		{"PROMOTED", "🎉 PROMOTED", "#6F42C1", true, true},
		{"denied", "❌ DENIED", "#D0021B", true, false},
		{"@all-new", "❔ @" + wj + "all-new", "#8B8B8B", true, false},
		{"", "❔ UNKNOWN", "#8B8B8B", true, false},
	} {
		msg, props := renderRequest(sampleRequestView(tc.state))
		if !strings.Contains(msg, "\n**Status:** "+tc.status+"\n") {
			t.Errorf("%q: no status line %q in\n%s", tc.state, tc.status, msg)
		}
		if got := strings.Contains(msg, "**Resolution reason:** ok, go ahead"); got != tc.resolution {
			t.Errorf("%q: resolution reason shown = %v, want %v", tc.state, got, tc.resolution)
		}
		att := props["attachments"].([]any)[0].(map[string]any)
		if att["color"] != tc.color || att["text"] != tc.status {
			t.Errorf("%q: attachment color %v text %v, want %v %v", tc.state, att["color"], att["text"], tc.color, tc.status)
		}
		if tc.distinct {
			if other, dup := colors[tc.color]; dup {
				t.Errorf("%s and %s share colour %s: an edit would not be readableRunes", other, tc.state, tc.color)
			}
			colors[tc.color] = tc.state
		}
		assertPropsRoundTrip(t, props)
	}
}

func TestRenderRequestOptionalFields(t *testing.T) {
	v := sampleRequestView("PENDING")
	v.Resources, v.Reason, v.Reviews, v.Link = nil, " \n ", 0, ""
	msg, props := renderRequest(v)
	for _, absent := range []string{"**Resources:**", "**Reason:**", "**Reviews:**", "Review in Teleport", "**Link:**", "**Resolution reason:**"} {
		if strings.Contains(msg, absent) {
			t.Errorf("%q shown although empty:\n%s", absent, msg)
		}
	}
	fields := props["attachments"].([]any)[0].(map[string]any)["fields"].([]any)
	if fields[0].(map[string]any)["value"] != "0" {
		t.Errorf("reviews field = %v", fields[0])
	}

	v.Reviews = 3
	v.Resources = []string{"/c/db/orders", "", "/c/node/web-1"}
	msg, props = renderRequest(v)
	if !strings.Contains(msg, "\n**Reviews:** 3\n") || !strings.Contains(msg, "\n**Resources:** /c/db/orders, /c/node/web-1\n") {
		t.Errorf("reviews or resources missing:\n%s", msg)
	}
	if got := props["attachments"].([]any)[0].(map[string]any)["fields"].([]any)[0].(map[string]any)["value"]; got != "3" {
		t.Errorf("reviews field = %v, want 3", got)
	}
}

func TestRenderRequestLink(t *testing.T) {
	for _, link := range []string{
		"https://teleport.example.com/web/requests/abc",
		"http://127.0.0.1:3080/web/requests/abc",
	} {
		v := sampleRequestView("PENDING")
		v.Link = link
		msg, _ := renderRequest(v)
		if !strings.HasSuffix(msg, "\n[Review in Teleport]("+link+")") {
			t.Errorf("link %q not rendered as a link:\n%s", link, msg)
		}
	}
	for _, link := range []string{
		"javascript:alert(1)",
		"https://evil.example/x) [more](https://evil",
		"https://teleport.example.com/web/requests/x)y",
		"https://a b/c",
		"ftp://teleport.example.com/x",
		"https://teleport.example.com/@here",
		"//teleport.example.com/x",
		"https://",
		"https://teleport.example.com/<b>",
		"https://teleport.example.com/" + strings.Repeat("x", MaxLinkRunes),
	} {
		v := sampleRequestView("PENDING")
		v.Link = link
		msg, _ := renderRequest(v)
		if strings.Contains(msg, "Review in Teleport") || strings.Contains(msg, "](") {
			t.Errorf("unsafe link %q rendered as a link:\n%s", link, msg)
		}
		line := msg[strings.LastIndex(msg, "\n")+1:]
		value, ok := strings.CutPrefix(line, "**Link:** ")
		if !ok {
			t.Fatalf("unsafe link %q not shown as text: %q", link, line)
		}
		assertInert(t, link, value)
	}
}

func TestRenderRequestLists(t *testing.T) {
	roles := make([]string, 1000)
	for i := range roles {
		roles[i] = "role-" + strconv.Itoa(i)
	}
	v := sampleRequestView("PENDING")
	v.Roles = roles
	msg, _ := renderRequest(v)
	line := ""
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(l, "**Roles:** ") {
			line = strings.TrimPrefix(l, "**Roles:** ")
		}
	}
	shown, rest, ok := strings.Cut(line, " and ")
	if !ok || utf8.RuneCountInString(line) > MaxListRunes {
		t.Fatalf("roles line not cut within %d runes: %q", MaxListRunes, line)
	}
	n := len(strings.Split(shown, ", "))
	if rest != strconv.Itoa(len(roles)-n)+" more" || !strings.HasPrefix(shown, "role-0, role-1, ") {
		t.Errorf("shown %d roles, then %q", n, rest)
	}
	// One name longer than the list budget is itself capped, never dropped.
	v.Roles = []string{strings.Repeat("r", 5000), "second"}
	msg, _ = renderRequest(v)
	if !strings.Contains(msg, "**Roles:** "+strings.Repeat("r", MaxNameRunes-utf8.RuneCountInString(TruncationMarker))+TruncationMarker+", second\n") {
		t.Errorf("long role not capped:\n%.400s", msg)
	}
}

// TestRenderRequestWorstCaseLength fills every field with the most expanding text there is and
// checks the sum of the per-field caps really keeps the post under MaxMessageRunes.
func TestRenderRequestWorstCaseLength(t *testing.T) {
	for _, unit := range []string{"$", "#", "@", "\\", "&a;", "é", "a\n", "x"} {
		long := strings.Repeat(unit, 100000)
		names := make([]string, 5000)
		for i := range names {
			names[i] = strings.Repeat(unit, 300)
		}
		v := requestView{
			ID: long, Cluster: long, User: long, Roles: names, Resources: names, Reason: long,
			State: long, ResolveReason: long, Reviews: math.MaxInt, Link: long,
		}
		msg, props := renderRequest(v)
		if n := utf8.RuneCountInString(msg); n > MaxMessageRunes {
			t.Errorf("unit %q: message is %d runes, over %d", unit, n, MaxMessageRunes)
		}
		assertPropsRoundTrip(t, props)
		review := renderReview(reviewView{Author: long, Verdict: long, Reason: long, Created: time.Now()})
		resolution := renderResolution("APPROVED", long, long)
		for _, m := range []string{review, resolution} {
			if n := utf8.RuneCountInString(m); n > MaxMessageRunes {
				t.Errorf("unit %q: reply is %d runes", unit, n)
			}
		}
	}
	if MaxMessageRunes > MattermostPostLimit/2 {
		t.Errorf("MaxMessageRunes %d is not well below Mattermost's %d", MaxMessageRunes, MattermostPostLimit)
	}
}

func TestRenderReview(t *testing.T) {
	at := time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		r    reviewView
		want string
	}{
		{reviewView{"bob", "APPROVED", "looks fine", at}, "✅ **bob** approved the request: looks fine (2025-01-02T03:04:05Z)"},
		{reviewView{"carol", "DENIED", "ask @channel first", at}, "❌ **carol** denied the request: ask @" + wj + "channel first (2025-01-02T03:04:05Z)"},
		{reviewView{"dave", "approved", "", at}, "✅ **dave** approved the request (2025-01-02T03:04:05Z)"},
		{reviewView{"*eve*", "MAYBE", "# big\n> quote", time.Time{}}, "❔ **\\*eve\\*** reviewed the request: \\#" + wj + " big ⏎ \\> quote"},
		{reviewView{"", "DENIED", "no", at}, "❌ A reviewer denied the request: no (2025-01-02T03:04:05Z)"},
	} {
		if got := renderReview(tc.r); got != tc.want {
			t.Errorf("renderReview(%+v)\n got %q\nwant %q", tc.r, got, tc.want)
		}
	}
}

func TestRenderResolution(t *testing.T) {
	for _, tc := range []struct{ state, resolver, reason, want string }{
		{"APPROVED", "alice", "reason", "✅ Approved by alice: reason"},
		{"DENIED", "", "not today", "❌ Denied: not today"},
		{"DENIED", "alice", "", "❌ Denied by alice"},
		{"EXPIRED", "", "", "⌛ The request expired"},
		{"EXPIRED", "alice", "", "⌛ The request expired"},
		{"PROMOTED", "alice", "see list", "🎉 Promoted to an access list by alice: see list"},
		{"APPROVED", "@all", "[x](https://evil)", "✅ Approved by @" + wj + "all: \\[x\\]\\(https:" + wj + "//evil)"},
		{"WEIRD", "alice", "", "❔ The request is now WEIRD"},
	} {
		if got := renderResolution(tc.state, tc.resolver, tc.reason); got != tc.want {
			t.Errorf("renderResolution(%q, %q, %q)\n got %q\nwant %q", tc.state, tc.resolver, tc.reason, got, tc.want)
		}
	}
}
