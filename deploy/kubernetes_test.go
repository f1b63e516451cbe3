package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
)

const kustomizeDir = "kubernetes"

// k8sObject is the common shape of every rendered resource; spec and data
// are decoded per kind.
type k8sObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec json.RawMessage   `json:"spec"`
}

type labelSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type portRef struct {
	Port     any    `json:"port"`
	Protocol string `json:"protocol"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Name    string `json:"name"`
	Image   string `json:"image"`
	Command []string
	Args    []string
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	StartupProbe   *probe `json:"startupProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext *struct {
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		Privileged               *bool `json:"privileged"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
			Add  []string `json:"add"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		SubPath   string `json:"subPath"`
	} `json:"volumeMounts"`
}

type deploymentSpec struct {
	Replicas int           `json:"replicas"`
	Selector labelSelector `json:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
			SecurityContext              struct {
				RunAsNonRoot *bool `json:"runAsNonRoot"`
			} `json:"securityContext"`
			Containers []container `json:"containers"`
			Volumes    []struct {
				Name      string `json:"name"`
				ConfigMap *struct {
					Name string `json:"name"`
				} `json:"configMap"`
			} `json:"volumes"`
		} `json:"spec"`
	} `json:"template"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []struct {
		Name       string `json:"name"`
		Port       int    `json:"port"`
		TargetPort any    `json:"targetPort"`
	} `json:"ports"`
}

type pdbSpec struct {
	Selector       labelSelector `json:"selector"`
	MinAvailable   any           `json:"minAvailable"`
	MaxUnavailable any           `json:"maxUnavailable"`
}

type hpaSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	MinReplicas int               `json:"minReplicas"`
	MaxReplicas int               `json:"maxReplicas"`
	Metrics     []json.RawMessage `json:"metrics"`
}

type netpolPeer struct {
	PodSelector       *labelSelector `json:"podSelector"`
	NamespaceSelector *labelSelector `json:"namespaceSelector"`
	IPBlock           *struct {
		CIDR string `json:"cidr"`
	} `json:"ipBlock"`
}

type netpolSpec struct {
	PodSelector labelSelector `json:"podSelector"`
	PolicyTypes []string      `json:"policyTypes"`
	Ingress     []struct {
		Ports []portRef    `json:"ports"`
		From  []netpolPeer `json:"from"`
	} `json:"ingress"`
	Egress []struct {
		Ports []portRef    `json:"ports"`
		To    []netpolPeer `json:"to"`
	} `json:"egress"`
}

// rendered is the kustomize output, indexed.
type rendered struct {
	objs []k8sObject
}

func (r rendered) all(kind string) []k8sObject {
	var out []k8sObject
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// kustomizeBuild runs kustomize (its Go API, the code behind `kustomize
// build`) on dir in fsys, with the load restrictor off as the
// kustomization's header says.
func kustomizeBuild(fsys filesys.FileSystem, dir string) (rendered, error) {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	rm, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return rendered{}, fmt.Errorf("kustomize build: %w", err)
	}
	var r rendered
	for _, res := range rm.Resources() {
		m, err := res.Map()
		if err != nil {
			return rendered{}, err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return rendered{}, err
		}
		var o k8sObject
		if err := json.Unmarshal(b, &o); err != nil {
			return rendered{}, fmt.Errorf("%s: %w", res.CurId(), err)
		}
		r.objs = append(r.objs, o)
	}
	return r, nil
}

// wantKinds is every kind the base may render, with its API version.
var wantKinds = map[string]string{
	"ServiceAccount":          "v1",
	"ConfigMap":               "v1",
	"Service":                 "v1",
	"Deployment":              "apps/v1",
	"PodDisruptionBudget":     "policy/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"NetworkPolicy":           "networking.k8s.io/v1",
}

func decodeSpec[T any](o k8sObject, probs *[]string) T {
	var v T
	if err := json.Unmarshal(o.Spec, &v); err != nil {
		*probs = append(*probs, fmt.Sprintf("%s/%s: spec: %v", o.Kind, o.Metadata.Name, err))
	}
	return v
}

// selects reports whether a selector (non-empty) matches labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// portOf resolves a port reference (number or container port name).
func portOf(ref any, c container) int {
	switch v := ref.(type) {
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		for _, p := range c.Ports {
			if p.Name == v {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func hostPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func urlPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

var envRefRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// secretish names environment variables that must come from a Secret.
var secretish = regexp.MustCompile(`PASSWORD|SECRET|TOKEN|_KEY$`)

// fakeSecret is a value of the right shape for each secret variable, so
// the configuration validates as it would with real secrets.
func fakeSecret(name string) string {
	if name == "SESSION_KEY" {
		return base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	}
	return "test-" + strings.ToLower(name) + "-value-0123456789"
}

// kubeProblems checks the rendered base. configPath is where the image
// reads its configuration: the ConfigMaps are written out as the pod would
// see them and loaded with crmgate's own config and policy loaders.
func kubeProblems(t *testing.T, r rendered, configPath string) []string {
	t.Helper()
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }

	counts := map[string]int{}
	for _, o := range r.objs {
		counts[o.Kind]++
		if want, ok := wantKinds[o.Kind]; !ok {
			add("%s/%s: unexpected kind", o.Kind, o.Metadata.Name)
		} else if o.APIVersion != want {
			add("%s/%s: apiVersion %s, want %s", o.Kind, o.Metadata.Name, o.APIVersion, want)
		}
		if o.Metadata.Name == "" || o.Metadata.Labels["app.kubernetes.io/name"] != "crmgate" {
			add("%s/%s: missing name or app.kubernetes.io/name label", o.Kind, o.Metadata.Name)
		}
	}
	for kind := range wantKinds {
		if counts[kind] == 0 {
			add("no %s rendered", kind)
		}
	}
	deps := r.all("Deployment")
	if len(deps) != 1 {
		add("%d Deployments, want 1", len(deps))
		return probs
	}
	dep := deps[0]
	ds := decodeSpec[deploymentSpec](dep, &probs)
	pod := ds.Template.Spec
	podLabels := ds.Template.Metadata.Labels
	if ds.Replicas != 3 {
		add("Deployment replicas %d, want 3", ds.Replicas)
	}
	if !selects(ds.Selector.MatchLabels, podLabels) {
		add("Deployment selector %v does not select its pods %v", ds.Selector.MatchLabels, podLabels)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		add("pods mount a service-account token crmgate never uses")
	}
	if len(pod.Containers) != 1 {
		add("%d containers, want 1", len(pod.Containers))
		return probs
	}
	c := pod.Containers[0]
	if c.Image == "crmgate" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, "/") {
		add("image %q: not a registry image pinned by tag or digest", c.Image)
	}
	if len(c.Command) > 0 || len(c.Args) > 0 {
		add("container overrides the image's ENTRYPOINT (config path %s)", configPath)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		add("container has no securityContext")
	default:
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
		if !nonRoot {
			add("runAsNonRoot is not true")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			add("container is privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			add("capabilities: must drop ALL and add none")
		}
	}
	for _, res := range []string{"cpu", "memory"} {
		if c.Resources.Requests[res] == "" {
			add("no %s request (the HPA needs it)", res)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		add("no memory limit")
	}

	// The configuration and policy ConfigMaps, as the pod mounts them.
	cms := map[string]k8sObject{}
	for _, o := range r.all("ConfigMap") {
		cms[o.Metadata.Name] = o
	}
	volumes := map[string]string{}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			if _, ok := cms[v.ConfigMap.Name]; !ok {
				add("volume %s refers to ConfigMap %s, which is not rendered", v.Name, v.ConfigMap.Name)
			}
			volumes[v.Name] = v.ConfigMap.Name
		}
	}
	root := t.TempDir()
	var cfgData string
	for _, m := range c.VolumeMounts {
		cm, ok := cms[volumes[m.Name]]
		if !ok {
			continue
		}
		dst := filepath.Join(root, filepath.FromSlash(m.MountPath))
		if m.SubPath != "" {
			data, ok := cm.Data[m.SubPath]
			if !ok {
				add("mount %s: ConfigMap %s has no key %s", m.MountPath, cm.Metadata.Name, m.SubPath)
				continue
			}
			if m.MountPath == configPath {
				cfgData = data
			}
			writeTestFile(t, dst, data)
			continue
		}
		for k, v := range cm.Data {
			writeTestFile(t, filepath.Join(dst, k), v)
		}
	}
	if cfgData == "" {
		add("nothing mounts the configuration at %s (the image's --config)", configPath)
		return probs
	}

	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = fakeSecret(e.Name)
		case secretish.MatchString(e.Name):
			add("env %s looks like a secret but is not from a secretKeyRef", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	for _, m := range envRefRe.FindAllStringSubmatch(withoutComments(cfgData), -1) {
		if _, ok := env[m[1]]; !ok {
			add("crmgate.yaml uses ${%s}, which the container does not set", m[1])
		}
		if secretish.MatchString(m[1]) && env[m[1]] != fakeSecret(m[1]) {
			add("${%s} is not from a Secret", m[1])
		}
	}
	if !strings.Contains(cfgData, "${REDIS_PASSWORD}") {
		add("crmgate.yaml does not take the Redis password from ${REDIS_PASSWORD}")
	}
	cfg, err := config.Parse([]byte(cfgData), func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		filepath.Dir(filepath.Join(root, filepath.FromSlash(configPath))))
	if err != nil {
		add("crmgate.yaml as mounted does not load: %v", err)
		return probs
	}
	if cfg.Session.Store != "redis" {
		add("session.store %q: 3 replicas need the shared redis store", cfg.Session.Store)
	}
	for _, p := range cfg.Policy.Paths {
		if !strings.HasPrefix(p, root) {
			add("policy path %s is outside the mounted files", p)
		}
	}
	eng, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{Paths: cfg.Policy.Paths}, Package: cfg.Policy.Package})
	if err != nil {
		add("the mounted policy does not load: %v", err)
	} else if eng.Revision() == "" {
		add("the mounted policy has no revision")
	}

	// Ports: the container, the config, the probes, the Services.
	listen, admin := hostPort(cfg.Listen.Address), hostPort(cfg.AdminListen)
	if portOf("http", c) != listen || listen == 0 {
		add("container port http %d is not listen's port %d", portOf("http", c), listen)
	}
	if portOf("admin", c) != admin || admin == 0 {
		add("container port admin %d is not admin_listen's port %d", portOf("admin", c), admin)
	}
	for name, pr := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		switch {
		case pr == nil && name == "startup":
		case pr == nil || pr.HTTPGet == nil:
			add("%s probe missing or not httpGet", name)
		case pr.HTTPGet.Path != want || portOf(pr.HTTPGet.Port, c) != admin:
			add("%s probe %s on port %v, want %s on the admin port %d", name, pr.HTTPGet.Path, pr.HTTPGet.Port, want, admin)
		}
	}
	var mainSvc bool
	for _, s := range r.all("Service") {
		ss := decodeSpec[serviceSpec](s, &probs)
		if !selects(ss.Selector, podLabels) {
			add("Service %s selector %v does not select the pods", s.Metadata.Name, ss.Selector)
		}
		for _, p := range ss.Ports {
			target := portOf(p.TargetPort, c)
			if target != listen && target != admin {
				add("Service %s port %s targets %v, which crmgate does not listen on", s.Metadata.Name, p.Name, p.TargetPort)
			}
			if s.Metadata.Name == "crmgate" && target == admin {
				add("the main Service exposes the admin port")
			}
			if s.Metadata.Name == "crmgate" && target == listen {
				mainSvc = true
			}
		}
	}
	if !mainSvc {
		add("no Service named crmgate in front of the proxy port")
	}

	for _, o := range r.all("PodDisruptionBudget") {
		ps := decodeSpec[pdbSpec](o, &probs)
		if !selects(ps.Selector.MatchLabels, podLabels) {
			add("PodDisruptionBudget does not select the pods")
		}
		switch {
		case ps.MaxUnavailable != nil:
			if n, ok := ps.MaxUnavailable.(float64); ok && n < 1 {
				add("PodDisruptionBudget maxUnavailable %v blocks every drain", n)
			}
		case ps.MinAvailable != nil:
			if n, ok := ps.MinAvailable.(float64); ok && int(n) >= ds.Replicas {
				add("PodDisruptionBudget minAvailable %v blocks every drain at %d replicas", n, ds.Replicas)
			}
		default:
			add("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
		}
	}
	for _, o := range r.all("HorizontalPodAutoscaler") {
		hs := decodeSpec[hpaSpec](o, &probs)
		if hs.ScaleTargetRef.Kind != "Deployment" || hs.ScaleTargetRef.Name != dep.Metadata.Name || hs.ScaleTargetRef.APIVersion != "apps/v1" {
			add("HPA targets %+v, not the Deployment %s", hs.ScaleTargetRef, dep.Metadata.Name)
		}
		if hs.MinReplicas < ds.Replicas || hs.MaxReplicas < hs.MinReplicas || len(hs.Metrics) == 0 {
			add("HPA min %d max %d metrics %d: min must keep the %d replicas", hs.MinReplicas, hs.MaxReplicas, len(hs.Metrics), ds.Replicas)
		}
	}

	for _, o := range r.all("NetworkPolicy") {
		ns := decodeSpec[netpolSpec](o, &probs)
		if !selects(ns.PodSelector.MatchLabels, podLabels) {
			add("NetworkPolicy does not select the pods")
		}
		if !slices.Contains(ns.PolicyTypes, "Ingress") || !slices.Contains(ns.PolicyTypes, "Egress") {
			add("NetworkPolicy policyTypes %v, want Ingress and Egress", ns.PolicyTypes)
		}
		ingress := map[int]bool{}
		for _, rule := range ns.Ingress {
			for _, p := range rule.Ports {
				port := portOf(p.Port, c)
				ingress[port] = true
				if port == admin && (len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(p netpolPeer) bool {
					return p.IPBlock == nil && (p.NamespaceSelector == nil || len(p.NamespaceSelector.MatchLabels) == 0) &&
						(p.PodSelector == nil || len(p.PodSelector.MatchLabels) == 0)
				})) {
					add("NetworkPolicy opens the admin port to everyone")
				}
			}
			if len(rule.Ports) == 0 {
				add("NetworkPolicy ingress rule without ports opens every port, admin included")
			}
		}
		if !ingress[listen] {
			add("NetworkPolicy admits nobody to the proxy port %d", listen)
		}
		egress := map[int]bool{}
		for _, rule := range ns.Egress {
			for _, p := range rule.Ports {
				egress[portOf(p.Port, c)] = true
			}
		}
		need := map[string]int{"DNS": 53, "upstream.url": urlPort(cfg.Upstream.URL)}
		for i, a := range cfg.Session.Redis.Addrs {
			need[fmt.Sprintf("session.redis.addrs[%d]", i)] = hostPort(a)
		}
		if cfg.Identity.OIDC.Issuer != "" {
			need["identity.oidc.issuer"] = urlPort(cfg.Identity.OIDC.Issuer)
		}
		for _, what := range slices.Sorted(maps.Keys(need)) {
			if !egress[need[what]] {
				add("NetworkPolicy egress does not allow %s (port %d)", what, need[what])
			}
		}
	}
	return probs
}

// withoutComments drops YAML comment lines, whose ${NAME}s are prose.
func withoutComments(y string) string {
	var b strings.Builder
	for _, l := range strings.Split(y, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKustomizeBase builds the base with kustomize and checks what it
// renders: kinds and API versions, labels and selectors, the pod's
// security settings, probes on the admin port, secrets from a Secret, and
// the mounted configuration loading with the mounted policy.
func TestKustomizeBase(t *testing.T) {
	t.Parallel()
	r, err := kustomizeBuild(filesys.MakeFsOnDisk(), kustomizeDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range kubeProblems(t, r, imageConfigPath(t)) {
		t.Error(p)
	}
}

// TestKustomizePolicyIsTheReferencePolicy: the policy ConfigMap carries
// every policy and data file of rego/ (tests excluded), so a rule file
// added there cannot be missing from the cluster.
func TestKustomizePolicyIsTheReferencePolicy(t *testing.T) {
	t.Parallel()
	r, err := kustomizeBuild(filesys.MakeFsOnDisk(), kustomizeDir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	entries, err := os.ReadDir("../rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasSuffix(n, ".rego") && !strings.HasSuffix(n, "_test.rego")) || strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".yaml") {
			want = append(want, n)
		}
	}
	var got []string
	for _, cm := range r.all("ConfigMap") {
		if strings.HasPrefix(cm.Metadata.Name, "crmgate-policy-") {
			for k, v := range cm.Data {
				got = append(got, k)
				if disk := string(readFile(t, filepath.Join("../rego", k))); disk != v {
					t.Errorf("%s differs from rego/%s", k, k)
				}
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("policy ConfigMap holds %v, rego/ has %v", got, want)
	}
}

// TestKustomizeChecksBite breaks the base in an in-memory copy, one way at
// a time, and expects kubeProblems to notice each.
func TestKustomizeChecksBite(t *testing.T) {
	t.Parallel()
	disk := filesys.MakeFsOnDisk()
	load := func(t *testing.T) filesys.FileSystem {
		t.Helper()
		mem := filesys.MakeFsInMemory()
		for _, dir := range []string{kustomizeDir, "../rego"} {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.IsDir() {
					continue
				}
				b, err := disk.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				dst := "/work/deploy/" + dir + "/" + e.Name()
				if err := mem.WriteFile(filepath.Clean(dst), b); err != nil {
					t.Fatal(err)
				}
			}
		}
		return mem
	}
	cases := []struct{ name, file, from, to, want string }{
		{"writable root filesystem", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", "deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"capabilities kept", "deployment.yaml", "drop: [ALL]", "drop: [NET_RAW]", "capabilities"},
		{"root allowed", "deployment.yaml", "runAsNonRoot: true\n            allowPrivilegeEscalation", "runAsNonRoot: false\n            allowPrivilegeEscalation", "runAsNonRoot"},
		{"probe on the proxy port", "deployment.yaml", "path: /readyz\n              port: admin", "path: /readyz\n              port: http", "readiness probe"},
		{"probe on the wrong path", "deployment.yaml", "path: /readyz", "path: /healthz", "readiness probe"},
		{"secret as a literal", "deployment.yaml", "- name: REDIS_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: crmgate\n                  key: redis-password", "- name: REDIS_PASSWORD\n              value: hunter2", "REDIS_PASSWORD"},
		{"variable nobody sets", "crmgate.yaml", "${SESSION_KEY}", "${SESSION_KEY_B64}", "SESSION_KEY_B64"},
		{"admin port in the main Service", "service.yaml", "targetPort: http", "targetPort: admin", "admin port"},
		{"selector that selects nothing", "service.yaml", "app.kubernetes.io/component: proxy", "app.kubernetes.io/component: proxi", "does not select"},
		{"admin open to all", "networkpolicy.yaml", "          protocol: TCP\n      from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring", "          protocol: TCP", "admin port to everyone"},
		{"no egress to Redis", "networkpolicy.yaml", "port: 6379", "port: 6380", "session.redis.addrs"},
		{"config on another port", "crmgate.yaml", "admin_listen: 0.0.0.0:9090", "admin_listen: 0.0.0.0:9091", "admin_listen"},
		{"policy path not mounted", "crmgate.yaml", "paths: [policy]", "paths: [/etc/crmgate/policies]", "policy"},
		{"memory sessions", "crmgate.yaml", "store: redis", "store: memory", "session.store"},
		{"HPA below the replicas", "horizontalpodautoscaler.yaml", "minReplicas: 3", "minReplicas: 1", "HPA"},
		{"PDB blocking drains", "poddisruptionbudget.yaml", "maxUnavailable: 1", "maxUnavailable: 0", "blocks every drain"},
		{"old HPA API", "horizontalpodautoscaler.yaml", "autoscaling/v2", "autoscaling/v1", "apiVersion"},
		{"two replicas", "deployment.yaml", "replicas: 3", "replicas: 2", "replicas"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fsys := load(t)
			p := filepath.Clean("/work/deploy/" + kustomizeDir + "/" + c.file)
			b, err := fsys.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			broken := strings.Replace(string(b), c.from, c.to, 1)
			if broken == string(b) {
				t.Fatalf("%q not found in %s", c.from, c.file)
			}
			if err := fsys.WriteFile(p, []byte(broken)); err != nil {
				t.Fatal(err)
			}
			r, err := kustomizeBuild(fsys, filepath.Clean("/work/deploy/"+kustomizeDir))
			if err != nil {
				t.Fatal(err)
			}
			probs := kubeProblems(t, r, imageConfigPath(t))
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("problems %q do not mention %q", probs, c.want)
			}
		})
	}
}
