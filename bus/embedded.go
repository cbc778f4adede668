package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded runs a JetStream-enabled nats-server storing under storeDir.
// With listen empty it listens on a free loopback port for clients with
// token only (the stages of this process and the walsearch commands on this
// machine); with listen set it takes any client there.
func startEmbedded(storeDir, listen, token string, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         "walsearch",
		JetStream:          true,
		StoreDir:           storeDir,
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 64 << 20,
	}
	if listen == "" {
		if token == "" {
			return nil, errors.New("start embedded nats: the loopback listener needs a token")
		}
		opts.Host, opts.Port, opts.Authorization = "127.0.0.1", server.RANDOM_PORT, token
	} else {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: bad port: %w", listen, err)
		}
		opts.Host, opts.Port = host, p
		// The server reports a taken port only by never becoming ready:
		// find out at once, and say so.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %s: cannot listen there (%w); choose a free address, or stop what holds it", listen, err)
		}
		ln.Close()
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	s.SetLoggerV2(&natsLogger{log: log}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("start embedded nats: not ready within 30s (store %s)", storeDir)
	}
	return s, nil
}

// natsLogger forwards the server's warnings and errors to slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}
func (l *natsLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any) {}
func (l *natsLogger) Tracef(format string, v ...any) {}
