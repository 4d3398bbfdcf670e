// Package chart_test checks what the Helm chart's golden renders
// (testdata/*.golden.yaml, kept current by deploy/helm/check) deploy: the
// properties an operator relies on, read from the manifests Kubernetes gets.
package chart_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/accessbot/accessbot/workflow"
	"github.com/goccy/go-yaml"
)

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env             []envVar `yaml:"env"`
	StartupProbe    probe    `yaml:"startupProbe"`
	LivenessProbe   probe    `yaml:"livenessProbe"`
	ReadinessProbe  probe    `yaml:"readinessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// object is the part of every rendered manifest the checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					FSGroup      int  `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name                  string    `yaml:"name"`
					EmptyDir              *struct{} `yaml:"emptyDir"`
					PersistentVolumeClaim *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Rules []struct {
			HTTP struct {
				Paths []struct {
					Path    string `yaml:"path"`
					Backend struct {
						Service struct {
							Port struct {
								Name string `yaml:"name"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

func render(t *testing.T, mode string) map[string]object {
	t.Helper()
	data, err := os.ReadFile("testdata/" + mode + ".golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s render: %v", mode, err)
		}
		if o.Kind != "" {
			objs[o.Kind] = o
		}
	}
	return objs
}

func env(c container, name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

// checkCommon: what both modes share: probes and metrics on the admin
// listener, non-root with a read-only root filesystem and /tmp as emptyDir,
// a grace period above the shutdown timeout.
func checkCommon(t *testing.T, objs map[string]object) container {
	t.Helper()
	dep, ok := objs["Deployment"]
	if !ok || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("no Deployment with one container: %+v", dep)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	admin := false
	for _, p := range c.Ports {
		admin = admin || (p.Name == "admin" && p.ContainerPort == 9090)
	}
	if e, _ := env(c, "ACCESSBOT_ADMIN_LISTEN"); !admin || e.Value != ":9090" {
		t.Errorf("admin listener: ports %+v, ACCESSBOT_ADMIN_LISTEN %q", c.Ports, e.Value)
	}
	for name, p := range map[string]probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe} {
		if p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != "admin" {
			t.Errorf("%s probe asks %+v, want /healthz on admin", name, p.HTTPGet)
		}
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != "admin" {
		t.Errorf("readiness probe asks %+v, want /readyz on admin", p)
	}
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser != 65532 || sc.FSGroup != 65532 {
		t.Errorf("pod security context %+v", sc)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", c.SecurityContext)
	}
	tmp := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			tmp = tmp || (m.MountPath == "/tmp" && v.Name == m.Name && v.EmptyDir != nil)
		}
	}
	if !tmp {
		t.Error("/tmp is not an emptyDir")
	}
	e, _ := env(c, "ACCESSBOT_SHUTDOWN_TIMEOUT")
	shutdown, err := time.ParseDuration(e.Value)
	if err != nil || time.Duration(pod.TerminationGracePeriodSeconds)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %d, ACCESSBOT_SHUTDOWN_TIMEOUT %q", pod.TerminationGracePeriodSeconds, e.Value)
	}
	return c
}

func TestSQLiteRender(t *testing.T) {
	objs := render(t, "sqlite")
	c := checkCommon(t, objs)
	dep := objs["Deployment"].Spec
	if dep.Replicas != 1 || dep.Strategy.Type != "Recreate" {
		t.Errorf("SQLite runs %d replicas with strategy %q, want 1 and Recreate", dep.Replicas, dep.Strategy.Type)
	}
	pvc, ok := objs["PersistentVolumeClaim"]
	if !ok {
		t.Fatal("no PersistentVolumeClaim")
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range dep.Template.Spec.Volumes {
			mounted = mounted || (m.MountPath == "/data" && v.Name == m.Name && v.PersistentVolumeClaim != nil &&
				v.PersistentVolumeClaim.ClaimName == pvc.Metadata.Name)
		}
	}
	if e, _ := env(c, "DATABASE_URL"); !mounted || e.Value != "sqlite:/data/accessbot.db" {
		t.Errorf("the database is not on the claim: DATABASE_URL %q, mounted %v", e.Value, mounted)
	}
	if _, ok := objs["Ingress"]; ok {
		t.Error("Socket Mode needs no Ingress")
	}
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "POSTHOG_PERSONAL_API_KEY"} {
		if e, _ := env(c, name); e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s is not read from the Secret: %+v", name, e)
		}
	}
	if _, ok := objs["Secret"]; !ok {
		t.Error("the chart did not create the Secret from values")
	}
	sm := objs["ServiceMonitor"].Spec.Endpoints
	if len(sm) != 1 || sm[0].Port != "admin" || sm[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v", sm)
	}
	// The policy shipped in the ConfigMap is one accessbot accepts.
	if _, err := workflow.ParsePolicy("policy.yaml", []byte(objs["ConfigMap"].Data["policy.yaml"])); err != nil {
		t.Errorf("the rendered policy is invalid: %v", err)
	}
}

func TestPostgresRender(t *testing.T) {
	objs := render(t, "postgres")
	c := checkCommon(t, objs)
	dep := objs["Deployment"].Spec
	if dep.Replicas != 3 || dep.Strategy.Type != "RollingUpdate" {
		t.Errorf("PostgreSQL runs %d replicas with strategy %q, want 3 and RollingUpdate", dep.Replicas, dep.Strategy.Type)
	}
	if e, _ := env(c, "DATABASE_URL"); e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
		e.ValueFrom.SecretKeyRef.Name != "accessbot-secrets" || e.ValueFrom.SecretKeyRef.Optional {
		t.Errorf("DATABASE_URL is not required from the existing Secret: %+v", e)
	}
	for _, kind := range []string{"PersistentVolumeClaim", "Secret", "ConfigMap"} {
		if _, ok := objs[kind]; ok {
			t.Errorf("a %s was created, though PostgreSQL mode, an existing Secret and an existing ConfigMap were asked for", kind)
		}
	}
	ing, ok := objs["Ingress"]
	if !ok || len(ing.Spec.Rules) != 1 || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatalf("want an Ingress with one path: %+v", ing.Spec.Rules)
	}
	if p := ing.Spec.Rules[0].HTTP.Paths[0]; p.Path != "/slack/" || p.Backend.Service.Port.Name != "http" {
		t.Errorf("the Ingress exposes %q on port %q, want only /slack/ on http", p.Path, p.Backend.Service.Port.Name)
	}
	if e, _ := env(c, "SLACK_SIGNING_SECRET"); e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("HTTP mode without SLACK_SIGNING_SECRET from the Secret: %+v", e)
	}
}
