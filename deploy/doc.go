// Package deploy holds crmgate's deployment artifacts: the Grafana
// dashboard, the Prometheus alert rules, the container image, the
// Kubernetes kustomize base, the compose file and the systemd unit.
//
// It has no code of its own; its tests validate every artifact against the
// thing it describes: the metric names a running crmgate exports, the
// configuration schema and the reference policy, and the real tools
// (kustomize, the compose loader, systemd-analyze, promtool).
package deploy
