package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// nastyFuzzSeeds are the nasty inputs short enough for the fuzzer to mutate quickly.
func nastyFuzzSeeds() []string {
	var seeds []string
	for _, s := range nastyUserTexts {
		if len(s) <= 512 {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

func FuzzEscapeText(f *testing.F) {
	for _, s := range nastyFuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		assertInert(t, s, escapeText(s))
	})
}

var (
	// fieldLineRE is every line renderRequest writes after the title: a bold label, then its value.
	fieldLineRE = regexp.MustCompile(`^\*\*(Cluster|User|Roles|Resources|Reason|Reviews|Status|Resolution reason|Link):\*\* (.+)$`)
	idSpanRE    = regexp.MustCompile("^`[0-9A-Za-z-]{1,64}`$")
	knownColors = map[any]bool{"#E8A317": true, "#2EB67D": true, "#D0021B": true, "#8B8B8B": true, "#6F42C1": true}
)

// plainLink is the test's own idea of a link that may be written into markdown as is.
func plainLink(link string) bool {
	if !strings.HasPrefix(link, "https://") && !strings.HasPrefix(link, "http://") {
		return false
	}
	for _, r := range link {
		if r >= utf8.RuneSelf || r <= ' ' || strings.ContainsRune("()<>[]@\\\"'`*|{}^!$;", r) {
			return false
		}
	}
	return true
}

func FuzzRenderRequest(f *testing.F) {
	for i, s := range nastyFuzzSeeds() {
		f.Add(s, "example.com", "alice", "editor,"+s, s, s, []string{"PENDING", "APPROVED", "DENIED", "EXPIRED", "PROMOTED", s}[i%6], s, "https://teleport.example.com/web/requests/"+s, i-3)
	}
	f.Fuzz(func(t *testing.T, id, cluster, user, roles, resources, reason, state, resolveReason, link string, reviews int) {
		v := requestView{
			ID: id, Cluster: cluster, User: user, Roles: strings.Split(roles, ","), Resources: strings.Split(resources, ","),
			Reason: reason, State: state, ResolveReason: resolveReason, Reviews: reviews, Link: link,
		}
		msg, props := renderRequest(v)
		if !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > MaxMessageRunes {
			t.Fatalf("message invalid or %d runes long", utf8.RuneCountInString(msg))
		}
		if mentionRE.MatchString(msg) {
			t.Fatalf("live mention in %q", msg)
		}
		lines := strings.Split(msg, "\n")
		title, ok := strings.CutPrefix(lines[0], "**Access Request**")
		if !ok {
			t.Fatalf("first line %q", lines[0])
		}
		if title != "" && !idSpanRE.MatchString(strings.TrimPrefix(title, " ")) {
			if why := inertProblem(strings.TrimPrefix(title, " ")); why != "" || title[0] != ' ' {
				t.Fatalf("title %q: %s", title, why)
			}
		}
		seen := map[string]bool{}
		for _, line := range lines[1:] {
			// Every line is ours: the user's text never starts one, so it cannot open a block.
			if target, ok := strings.CutPrefix(line, "[Review in Teleport]("); ok {
				if target != link+")" || !plainLink(link) {
					t.Fatalf("link line %q for link %q", line, link)
				}
				continue
			}
			m := fieldLineRE.FindStringSubmatch(line)
			if m == nil || seen[m[1]] {
				t.Fatalf("line %q is not a single field of ours", line)
			}
			seen[m[1]] = true
			if why := inertProblem(m[2]); why != "" {
				t.Fatalf("field %s = %q: %s", m[1], m[2], why)
			}
			in := map[string]string{"Cluster": cluster, "User": user, "Reason": reason, "Resolution reason": resolveReason, "Link": link}
			if raw, ok := in[m[1]]; ok && !showsFaithfully(raw, m[2]) {
				t.Fatalf("field %s = %q does not show %q", m[1], m[2], raw)
			}
		}
		assertPropsRoundTrip(t, props)
		att := props["attachments"].([]any)[0].(map[string]any)
		if !knownColors[att["color"]] || !strings.Contains(msg, "\n**Status:** "+att["text"].(string)+"\n") && !strings.HasSuffix(msg, "\n**Status:** "+att["text"].(string)) {
			t.Fatalf("attachment %v does not match the status line", att)
		}

		// The thread replies get the same inputs: one line, bounded, nothing live.
		for _, reply := range []string{
			renderReview(reviewView{Author: user, Verdict: state, Reason: reason, Created: time.Unix(int64(reviews), 0)}),
			renderResolution(state, user, resolveReason),
		} {
			if !utf8.ValidString(reply) || utf8.RuneCountInString(reply) > MaxMessageRunes || strings.ContainsAny(reply, "\n\r") {
				t.Fatalf("reply invalid, too long or multi-line: %q", reply)
			}
			if mentionRE.MatchString(reply) || liveMarkRE.MatchString(reply) || strings.Contains(reply, "](") || strings.Contains(reply, "://") {
				t.Fatalf("reply has a live mention or link: %q", reply)
			}
		}
	})
}
