package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// PingInterval is how often the fake pings a Socket Mode client, keeping
// slack-go's dead-connection timer (30s by default) happy.
const PingInterval = 5 * time.Second

// Ack is a Socket Mode client's acknowledgement of an envelope.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

type socketState struct {
	mu        sync.Mutex
	conn      *websocket.Conn          // the newest connection: envelopes go there
	open      map[*websocket.Conn]bool // every connection still open
	writeMu   sync.Mutex
	connected chan struct{} // closed while a client is connected
	waiting   map[string]chan Ack
	done      chan struct{}
	closeOnce sync.Once
	count     int // connections accepted so far
	oversized int // frames over MaxSocketFrameBytes
	gaps      int // times the last open connection closed
}

func (st *socketState) init() {
	st.connected = make(chan struct{})
	st.waiting = map[string]chan Ack{}
	st.open = map[*websocket.Conn]bool{}
	st.done = make(chan struct{})
}

func (st *socketState) close() {
	st.closeOnce.Do(func() {
		close(st.done)
		st.mu.Lock()
		for c := range st.open {
			_ = c.Close()
		}
		st.mu.Unlock()
	})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket is the Socket Mode websocket: it says hello, pings, and
// routes acknowledgements to the envelopes waiting for them. Like Slack, it
// keeps several connections of one app open at once (envelopes go to the
// newest), and closes a connection that sends a frame over
// MaxSocketFrameBytes with status 1009, dropping that frame.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(MaxSocketFrameBytes)
	st := &s.sock
	hello := map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "slacktest", "build_number": 1, "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": AppID}}
	// Like Slack, hello is the first frame of a connection: envelopes pushed
	// to it meanwhile wait for the write lock until hello is out.
	st.writeMu.Lock()
	st.mu.Lock()
	st.conn = conn
	st.open[conn] = true
	st.count++
	st.mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = conn.WriteJSON(hello)
	st.writeMu.Unlock()
	if err != nil {
		// Never connected: envelopes must not go to it.
		_ = conn.Close()
		st.mu.Lock()
		st.forgetLocked(conn)
		st.mu.Unlock()
		return
	}
	st.mu.Lock()
	select {
	case <-st.connected:
	default:
		close(st.connected)
	}
	st.mu.Unlock()

	stopPing := make(chan struct{})
	go func() {
		t := time.NewTicker(PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-st.done:
				return
			case <-t.C:
				if conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	defer close(stopPing)
	for {
		var a Ack
		if err := conn.ReadJSON(&a); err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				st.mu.Lock()
				st.oversized++
				st.mu.Unlock()
			}
			break
		}
		st.mu.Lock()
		ch := st.waiting[a.EnvelopeID]
		delete(st.waiting, a.EnvelopeID)
		st.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
	_ = conn.Close()
	st.mu.Lock()
	st.forgetLocked(conn)
	if len(st.open) == 0 {
		st.gaps++
		st.connected = make(chan struct{})
	}
	st.mu.Unlock()
}

// forgetLocked drops conn from the open connections; an older one still
// open takes the envelopes. st.mu is held.
func (st *socketState) forgetLocked(conn *websocket.Conn) {
	delete(st.open, conn)
	if st.conn == conn {
		st.conn = nil
		for c := range st.open {
			st.conn = c
		}
	}
}

func (st *socketState) write(conn *websocket.Conn, v any) error {
	st.writeMu.Lock()
	defer st.writeMu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return conn.WriteJSON(v)
}

// SocketConnections reports how many Socket Mode connections the fake has
// accepted so far (reconnects included).
func (s *Server) SocketConnections() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.count
}

// WaitSocket waits until a Socket Mode client is connected (and greeted).
func (s *Server) WaitSocket(ctx context.Context) error {
	s.sock.mu.Lock()
	ch := s.sock.connected
	s.sock.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PushEnvelope sends a Socket Mode envelope of type typ ("slash_commands",
// "interactive" or "events_api") carrying payload (any JSON value, or
// json.RawMessage) to the connected client and waits for its ack.
func (s *Server) PushEnvelope(ctx context.Context, typ string, payload any) (Ack, error) {
	if err := s.WaitSocket(ctx); err != nil {
		return Ack{}, err
	}
	id := s.nextID("env-")
	ch := make(chan Ack, 1)
	st := &s.sock
	st.mu.Lock()
	conn := st.conn
	st.waiting[id] = ch
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.waiting, id)
		st.mu.Unlock()
	}()
	if conn == nil {
		return Ack{}, errors.New("slacktest: no socket mode client")
	}
	env := map[string]any{"envelope_id": id, "type": typ, "payload": payload,
		"accepts_response_payload": typ != "events_api", "retry_attempt": 0, "retry_reason": ""}
	if err := st.write(conn, env); err != nil {
		return Ack{}, err
	}
	deadline := time.NewTimer(AckDeadline)
	defer deadline.Stop()
	select {
	case a := <-ch:
		return a, nil
	case <-deadline.C:
		return Ack{}, ErrAckTimeout
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

// AckDeadline is how long Slack waits for an envelope's ack: past it the
// person sees an error (operation_timeout for a slash command) and a
// payload in a late ack is thrown away.
const AckDeadline = 3 * time.Second

// ErrAckTimeout is PushEnvelope's error when the app did not ack within
// AckDeadline.
var ErrAckTimeout = fmt.Errorf("slacktest: envelope not acknowledged within %v", AckDeadline)

// PushSlashCommand sends a slash command over Socket Mode.
func (s *Server) PushSlashCommand(ctx context.Context, cmd SlashCommand) (Ack, error) {
	return s.PushEnvelope(ctx, "slash_commands", cmd.fields())
}

// PushInteraction sends an interaction payload (from BlockActions,
// ViewSubmission, BlockSuggestion, …) over Socket Mode.
func (s *Server) PushInteraction(ctx context.Context, payload []byte) (Ack, error) {
	return s.PushEnvelope(ctx, "interactive", json.RawMessage(payload))
}

// PushEvent sends an Events API payload (from AppHomeOpened, …) over
// Socket Mode.
func (s *Server) PushEvent(ctx context.Context, payload []byte) (Ack, error) {
	return s.PushEnvelope(ctx, "events_api", json.RawMessage(payload))
}

// DisconnectSocket asks the client to reconnect, as Slack does every few
// hours, and closes that connection after grace if the client has not (0:
// never).
func (s *Server) DisconnectSocket(grace time.Duration) error {
	st := &s.sock
	st.mu.Lock()
	conn := st.conn
	st.mu.Unlock()
	if conn == nil {
		return errors.New("slacktest: no socket mode client")
	}
	if grace > 0 {
		time.AfterFunc(grace, func() { _ = conn.Close() })
	}
	return st.write(conn, map[string]any{"type": "disconnect", "reason": "refresh_requested",
		"debug_info": map[string]any{"host": "slacktest"}})
}

// OpenSockets reports how many Socket Mode connections are open now.
func (s *Server) OpenSockets() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return len(s.sock.open)
}

// SocketGaps reports how many times the app had no Socket Mode connection
// open after having one: a reconnect that closes before it opens counts.
func (s *Server) SocketGaps() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.gaps
}

// DropSocket closes every Socket Mode connection, as a network failure would.
func (s *Server) DropSocket() {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	for c := range s.sock.open {
		_ = c.Close()
	}
}
