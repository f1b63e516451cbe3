package deploy

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const dockerfilePath = "Dockerfile"

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd, args string
	line      int
}

// stage is one FROM and the instructions under it.
type stage struct {
	image, name string
	ins         []instruction
}

func parseDockerfile(src string) []stage {
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				case st.image == "":
					st.image = f[i]
				}
			}
			stages = append(stages, st)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	for n, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

var urlRe = regexp.MustCompile(`(?i)\b(https?|ftp)://`)

// dockerfileProblems lists the ways a Dockerfile breaks crmgate's image
// invariants.
func dockerfileProblems(src string) []string {
	var probs []string
	stages := parseDockerfile(src)
	if len(stages) < 2 {
		return []string{"not multi-stage: the toolchain would ship in the image"}
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
		probs = append(probs, "final image "+final.image+" is not distroless static :nonroot")
	}
	for _, st := range stages {
		if !strings.Contains(st.image, ":") && !strings.Contains(st.image, "@") || strings.HasSuffix(st.image, ":latest") {
			probs = append(probs, "base image "+st.image+" is not pinned to a tag or digest")
		}
		for _, in := range st.ins {
			if in.cmd == "ADD" {
				if urlRe.MatchString(in.args) {
					probs = append(probs, "ADD of a URL (unverified download)")
				} else {
					probs = append(probs, "ADD where COPY is meant (ADD unpacks archives)")
				}
			}
			if in.cmd == "RUN" && urlRe.MatchString(in.args) && regexp.MustCompile(`\|\s*(ba)?sh\b`).MatchString(in.args) {
				probs = append(probs, "RUN pipes a download into a shell")
			}
		}
	}
	var build string
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st.ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(build, want) {
			probs = append(probs, "go build lacks "+want)
		}
	}
	user := ""
	var exposed []string
	var entry []string
	for _, in := range final.ins {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
				probs = append(probs, "ENTRYPOINT is not in exec (JSON) form: signals would go to a shell")
			}
		case "COPY":
			if !strings.Contains(in.args, "--from=") {
				probs = append(probs, "final stage copies from the build context: "+in.args)
			}
		case "RUN":
			probs = append(probs, "RUN in the final stage (distroless has no shell)")
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		probs = append(probs, "final stage does not set a non-root USER")
	}
	for _, p := range []string{"8080", "9090"} {
		if !slices.Contains(exposed, p) {
			probs = append(probs, "EXPOSE lacks "+p)
		}
	}
	if len(entry) != 4 || entry[1] != "serve" || entry[2] != "--config" || !strings.HasSuffix(entry[0], "/crmgate") {
		probs = append(probs, "ENTRYPOINT is not crmgate serve --config FILE")
	}
	return probs
}

// imageConfigPath is the configuration path the image's ENTRYPOINT reads,
// which every deployment must mount.
func imageConfigPath(t *testing.T) string {
	t.Helper()
	stages := parseDockerfile(string(readFile(t, dockerfilePath)))
	for _, in := range stages[len(stages)-1].ins {
		if in.cmd == "ENTRYPOINT" {
			var entry []string
			if err := json.Unmarshal([]byte(in.args), &entry); err == nil && len(entry) == 4 {
				return entry[3]
			}
		}
	}
	t.Fatal("no ENTRYPOINT with a config path")
	return ""
}

// TestDockerfile checks the image invariants, and that each one is
// enforced by breaking it in a copy.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	src := string(readFile(t, dockerfilePath))
	for _, p := range dockerfileProblems(src) {
		t.Error(p)
	}
	if main := string(readFile(t, "../main.go")); !regexp.MustCompile(`(?m)^var version = `).MatchString(main) {
		t.Error("main.version, set by -ldflags -X, no longer exists in main.go")
	}
	for _, c := range []struct{ name, from, to string }{
		{"root user", "USER nonroot:nonroot", "USER root"},
		{"no user", "USER nonroot:nonroot\n", ""},
		{"ADD of a URL", "COPY go.mod go.sum ./", "ADD https://example.com/x.tar.gz /x"},
		{"curl into sh", "RUN go mod download", "RUN curl -fsSL https://example.com/i.sh | sh"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/crmgate /usr/local/bin/crmgate\n", ""},
		{"cgo", "RUN CGO_ENABLED=0 go build", "RUN go build"},
		{"no trimpath", "go build -trimpath ", "go build "},
		{"shell-form entrypoint", `ENTRYPOINT ["/usr/local/bin/crmgate", "serve", "--config", "/etc/crmgate/crmgate.yaml"]`, "ENTRYPOINT /usr/local/bin/crmgate serve --config /etc/crmgate/crmgate.yaml"},
		{"latest base", "static-debian12:nonroot", "static-debian12:latest"},
		{"context copied into the final image", "COPY --from=build /out/crmgate", "COPY crmgate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := strings.Replace(src, c.from, c.to, 1)
			if broken == src {
				t.Fatalf("%q not found in the Dockerfile", c.from)
			}
			if len(dockerfileProblems(broken)) == 0 {
				t.Error("broken Dockerfile passed")
			}
		})
	}
}
