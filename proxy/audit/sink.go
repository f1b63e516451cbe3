package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Sink is where decision-log entries go. The Logger calls Write from a
// single goroutine, so a Sink need not be safe for concurrent use.
type Sink interface {
	// Write stores a batch and returns how many entries of it were stored;
	// with a nil error all were. ctx is cancelled when Logger.Close runs out
	// of time; retrying sinks must stop waiting then. A sink must not keep
	// batch after Write returns.
	Write(ctx context.Context, batch []*Entry) (int, error)
	// Close flushes and releases the sink. The Logger calls it once, after
	// the last Write.
	Close() error
}

// Batcher is implemented by sinks that prefer fewer, larger writes (such as
// an upload API): the Logger collects up to maxEvents entries, waiting up to
// linger for the batch to fill. Sinks without it get whatever is queued,
// without waiting.
type Batcher interface {
	Batching() (maxEvents int, linger time.Duration)
}

// zapSink writes one JSON line per entry through zap's JSON encoder.
type zapSink struct {
	core   zapcore.Core
	ws     zapcore.WriteSyncer
	closer io.Closer // nil when the writer is not the sink's to close
}

// NewZapSink returns a Sink writing one JSON line per entry to w: "level"
// ("info"), "timestamp" (the decision's time, RFC 3339 with nanoseconds,
// UTC), "msg" ("decision"), then the entry's fields at the top level. This is
// the stdout output. The Sink does not close w.
func NewZapSink(w zapcore.WriteSyncer) Sink {
	return &zapSink{core: newCore(w), ws: w}
}

func newCore(w zapcore.WriteSyncer) zapcore.Core {
	cfg := zapcore.EncoderConfig{
		LevelKey:       "level",
		TimeKey:        "timestamp",
		MessageKey:     "msg",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.NanosDurationEncoder,
	}
	return zapcore.NewCore(zapcore.NewJSONEncoder(cfg), w, zapcore.InfoLevel)
}

// NewFileSink returns a Sink writing the same lines as NewZapSink to the
// file at path, rotated when it reaches maxSizeMB megabytes (lumberjack's
// default of 100 when zero or less), keeping maxBackups rotated files (all
// when zero). The file is created with mode 0600 if missing; it is opened
// once here so that a bad path fails at start-up rather than at the first
// decision.
func NewFileSink(path string, maxSizeMB, maxBackups int) (Sink, error) {
	if path == "" {
		return nil, errors.New("open decision log file: empty path")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open decision log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open decision log file: %w", err)
	}
	lj := &lumberjack.Logger{
		Filename:   path,
		MaxSize:    max(maxSizeMB, 0),
		MaxBackups: max(maxBackups, 0),
	}
	ws := zapcore.AddSync(lj)
	return &zapSink{core: newCore(ws), ws: ws, closer: lj}, nil
}

func (s *zapSink) Write(_ context.Context, batch []*Entry) (int, error) {
	var (
		n     int
		first error
	)
	for _, e := range batch {
		err := s.core.Write(zapcore.Entry{
			Level:   zapcore.InfoLevel,
			Time:    e.Timestamp,
			Message: "decision",
		}, []zapcore.Field{zap.Inline(e)})
		if err != nil {
			if first == nil {
				first = fmt.Errorf("write decision log: %w", err)
			}
			continue
		}
		n++
	}
	return n, first
}

func (s *zapSink) Close() error {
	err := s.ws.Sync()
	// Pipes and terminals (stdout under a container runtime) cannot be
	// fsynced; that is not a lost event.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOTTY) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("sync decision log: %w", err)
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close decision log file: %w", cerr))
		}
	}
	return err
}
