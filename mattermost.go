package main

// SKELETON: the mattermost helper replaces this file, keeping these declarations.

import (
	"context"
	"log/slog"
)

// mattermost is a client of the Mattermost REST API v4, acting as the bot.
type mattermost struct{}

func newMattermost(cfg mattermostConfig, log *slog.Logger) (*mattermost, error) { panic("todo") }

type mmUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

type mmTeam struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

type mmChannel struct {
	ID          string `json:"id"`
	TeamID      string `json:"team_id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

type mmPost struct {
	ID        string         `json:"id,omitempty"`
	ChannelID string         `json:"channel_id"`
	RootID    string         `json:"root_id,omitempty"`
	Message   string         `json:"message"`
	Props     map[string]any `json:"props,omitempty"`
	CreateAt  int64          `json:"create_at,omitempty"`
	UpdateAt  int64          `json:"update_at,omitempty"`
	EditAt    int64          `json:"edit_at,omitempty"`
}

// apiError is an error answer from Mattermost, decoded from its JSON body.
type apiError struct {
	Method, Path string
	Status       int
	ID           string
	Message      string
	RequestID    string
}

func (e *apiError) Error() string { panic("todo") }

func (m *mattermost) me(ctx context.Context) (mmUser, error)                        { panic("todo") }
func (m *mattermost) teamByName(ctx context.Context, name string) (mmTeam, error)   { panic("todo") }
func (m *mattermost) userByEmail(ctx context.Context, email string) (mmUser, error) { panic("todo") }
func (m *mattermost) createPost(ctx context.Context, p mmPost) (mmPost, error)      { panic("todo") }
func (m *mattermost) channelByName(ctx context.Context, team, name string) (mmChannel, error) {
	panic("todo")
}
func (m *mattermost) searchChannels(ctx context.Context, teamID, term string) ([]mmChannel, error) {
	panic("todo")
}
func (m *mattermost) directChannel(ctx context.Context, botID, userID string) (mmChannel, error) {
	panic("todo")
}

// patchPost changes only the given fields (PUT /posts/{id}/patch).
func (m *mattermost) patchPost(ctx context.Context, id, message string, props map[string]any) (mmPost, error) {
	panic("todo")
}

// resolveRecipient finds the channel id to post to for r (with the
// display-name fallback and direct channels from botID to a user).
func (m *mattermost) resolveRecipient(ctx context.Context, r recipient, botID string) (string, error) {
	panic("todo")
}

// Status helpers over wrapped *apiError.
func isUnauthorized(err error) bool { panic("todo") }
func isNotFound(err error) bool     { panic("todo") }
func isForbidden(err error) bool    { panic("todo") }
