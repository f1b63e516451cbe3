package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

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

// lineSink writes one JSON line per entry, in the shape zap's JSON encoder
// gives a log entry (level, timestamp, msg, then the entry's fields). The
// lines are written by hand rather than through zap: input and result are
// already JSON, and re-encoding them by reflection was most of the decision
// log's cost.
type lineSink struct {
	ws     zapcore.WriteSyncer
	closer io.Closer // nil when the writer is not the sink's to close
	buf    []byte
}

// maxChunk bounds one write: lines are written together, which saves a
// system call per event, but never so many that a rotating file cannot take
// them in one piece.
const maxChunk = 32 << 10

// NewZapSink returns a Sink writing one JSON line per entry to w: "level"
// ("info"), "timestamp" (the decision's time, RFC 3339 with nanoseconds,
// UTC), "msg" ("decision"), then the entry's fields at the top level, as
// zap's JSON encoder writes a log entry. This is the stdout output. Whole
// lines are written, several to a write. The Sink does not close w.
func NewZapSink(w zapcore.WriteSyncer) Sink {
	return &lineSink{ws: w}
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
	return &lineSink{ws: zapcore.AddSync(lj), closer: lj}, nil
}

func (s *lineSink) Write(_ context.Context, batch []*Entry) (int, error) {
	var (
		stored int
		first  error
	)
	buf := s.buf[:0]
	for _, e := range batch {
		mark := len(buf)
		buf = appendLine(buf, e)
		if mark > 0 && len(buf) > maxChunk {
			// Write what came before, so that a long line does not
			// drag the others into a write too large to take.
			stored += s.write(buf[:mark], &first)
			buf = append(buf[:0], buf[mark:]...)
		}
		if len(buf) >= maxChunk {
			stored += s.write(buf, &first)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		stored += s.write(buf, &first)
	}
	if cap(buf) <= 4*maxChunk {
		s.buf = buf[:0]
	}
	return stored, first
}

// write writes whole lines and returns how many of them were written
// completely; the first error is kept in *first.
func (s *lineSink) write(lines []byte, first *error) int {
	n, err := s.ws.Write(lines)
	if err == nil && n < len(lines) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if *first == nil {
			*first = fmt.Errorf("write decision log: %w", err)
		}
		return bytes.Count(lines[:min(max(n, 0), len(lines))], []byte{'\n'})
	}
	return bytes.Count(lines, []byte{'\n'})
}

func (s *lineSink) Close() error {
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
