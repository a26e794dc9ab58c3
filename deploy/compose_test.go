package deploy

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads the root docker-compose.yml as `docker compose` does:
// validated against the compose specification's schema, anchors merged,
// variables interpolated.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  "..",
		ConfigFiles: []types.ConfigFile{{Filename: "../docker-compose.yml"}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("sluice", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadCompose(t)
	composeStages := append(slices.Clone(stageNames), "gateway")
	for _, name := range []string{"kafka", "elasticsearch", "kibana", "demo", "shipper", "router", "indexer", "gateway"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	volumes := map[string]bool{}
	for name := range p.Volumes {
		volumes[name] = true
	}
	stagesSeen := map[string]bool{}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			}
			if !slices.Contains([]string{types.ServiceConditionHealthy, types.ServiceConditionStarted, types.ServiceConditionCompletedSuccessfully}, d.Condition) {
				t.Errorf("service %s: depends_on %s condition %q", name, dep, d.Condition)
			}
			if d.Condition == types.ServiceConditionHealthy && p.Services[dep].HealthCheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && !volumes[v.Source] {
				t.Errorf("service %s mounts volume %q, which is not declared", name, v.Source)
			}
		}
		if s.Build == nil { // not a Sluice service
			continue
		}
		if s.Image != "sluice:compose" || s.Build.Context != p.WorkingDir {
			t.Errorf("service %s: every Sluice service builds the root Dockerfile into one image, got image %q context %q", name, s.Image, s.Build.Context)
		}
		if s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, types.HealthCheckTest{"CMD", "/usr/local/bin/sluice", "probe"}) {
			t.Errorf("service %s: want the health check sluice probe, got %+v", name, s.HealthCheck)
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s runs no sluice command", name)
			continue
		}
		stage := s.Command[0]
		if !slices.Contains(composeStages, stage) {
			continue // the demo
		}
		stagesSeen[stage] = true
		if len(s.Command) != 1 {
			t.Errorf("service %s: command %v; stages take their settings from the environment", name, s.Command)
		}
		checkComposeStage(t, p, name, stage, s)
	}
	if len(stagesSeen) != len(composeStages) {
		t.Errorf("stages run: %v, want %v", stagesSeen, composeStages)
	}
}

// checkComposeStage checks a stage's service: its settings load and
// validate, its servers are services of the project, its state and input
// are in volumes, and it has time to flush when stopped.
func checkComposeStage(t *testing.T, p *types.Project, name, stage string, s types.ServiceConfig) {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	st, err := loadStage(stage, env)
	if err != nil {
		t.Errorf("service %s: settings: %v", name, err)
		return
	}
	for k := range env {
		if st.secretValue(k) {
			t.Errorf("service %s: secret %s written into docker-compose.yml", name, k)
		}
	}
	hostIsService := func(setting, hostport string) {
		host := hostport
		if u, err := url.Parse(hostport); err == nil && u.Host != "" {
			host = u.Host
		}
		host, _, _ = strings.Cut(host, ":")
		if _, ok := p.Services[host]; !ok {
			t.Errorf("service %s: %s=%s: %s is not a service of the project", name, setting, hostport, host)
		} else if _, ok := s.DependsOn[host]; !ok {
			t.Errorf("service %s uses %s (%s) without depending on it", name, host, setting)
		}
	}
	// The servers must be named (the defaults, 127.0.0.1, are the container
	// itself) and be services this one depends on.
	servers := []string{"SLUICE_KAFKA_BROKERS"}
	if stage == "indexer" {
		servers = append(servers, "SLUICE_ELASTICSEARCH_URLS")
	}
	for _, setting := range servers {
		if env[setting] == "" {
			t.Errorf("service %s: %s unset: the default 127.0.0.1 is the container itself", name, setting)
		}
		for _, addr := range strings.Split(env[setting], ",") {
			hostIsService(setting, addr)
		}
	}
	if stage == "shipper" {
		mounted := func(dir string) *types.ServiceVolumeConfig {
			for i, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume && (dir == v.Target || strings.HasPrefix(dir, v.Target+"/")) {
					return &s.Volumes[i]
				}
			}
			return nil
		}
		if v := mounted(st.checkpointDir); v == nil || v.ReadOnly {
			t.Errorf("service %s: checkpoint directory %s is not in a writable volume: checkpoints would not survive a new container", name, st.checkpointDir)
		}
		glob := env["SLUICE_SHIPPER_PATHS"]
		if v := mounted(path.Dir(glob)); v == nil {
			t.Errorf("service %s: SLUICE_SHIPPER_PATHS %s is not in a volume", name, glob)
		} else if !slices.ContainsFunc(p.Services["demo"].Volumes, func(d types.ServiceVolumeConfig) bool { return d.Source == v.Source && !d.ReadOnly }) {
			t.Errorf("service %s reads volume %s, which the demo does not write", name, v.Source)
		}
	}
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < st.shutdown+5*time.Second {
		t.Errorf("service %s: stop_grace_period %v leaves less than 5s beyond the %s shutdown timeout", name, s.StopGracePeriod, st.shutdown)
	}
}
