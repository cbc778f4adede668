package deploy

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const kubeDir = "kubernetes"

// externalSecrets are Secrets the manifests use but do not contain: the
// user creates them (docs/deploy.md says how), since their content is
// the user's own certificate.
var externalSecrets = []string{"walsearch-elasticsearch-ca", "walsearch-tls"}

// kustomization is the part of kustomization.yaml the manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// manifests is every object of deploy/kubernetes, decoded.
type manifests struct {
	kust         kustomization
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	ingresses    map[string]*networkingv1.Ingress
	pdbs         map[string]*policyv1.PodDisruptionBudget
	objects      []runtime.Object
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every resource kustomization.yaml lists, strictly:
// an unknown or misspelt field, a wrong type or a malformed quantity fails.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	m := &manifests{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{},
		statefulSets: map[string]*appsv1.StatefulSet{}, ingresses: map[string]*networkingv1.Ingress{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(kubeDir, "kustomization.yaml"))), &m.kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if m.kust.Kind != "Kustomization" || m.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Errorf("kustomization.yaml: kind %q apiVersion %q", m.kust.Kind, m.kust.APIVersion)
	}
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			onDisk = append(onDisk, b)
		}
	}
	listed := slices.Sorted(slices.Values(m.kust.Resources))
	if !slices.Equal(listed, onDisk) {
		t.Errorf("kustomization.yaml lists %v; the folder holds %v: kubectl apply -k would miss or fail on the difference", listed, onDisk)
	}
	for _, f := range m.kust.Resources {
		raw := readFile(t, filepath.Join(kubeDir, f))
		for i, doc := range docSeparator.Split(raw, -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s (document %d)", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			obj, err := scheme.New(tm.GroupVersionKind())
			if err != nil {
				t.Fatalf("%s: %s %s is not a type these manifests should use: %v", where, tm.APIVersion, tm.Kind, err)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: does not decode strictly as %s: %v", where, tm.Kind, err)
			}
			m.add(t, where, obj)
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func (m *manifests) add(t *testing.T, where string, obj runtime.Object) {
	t.Helper()
	meta, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("%s: no metadata", where)
	}
	for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
		t.Errorf("%s: name %q: %s", where, meta.GetName(), msg)
	}
	for k, v := range meta.GetLabels() {
		for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
			t.Errorf("%s: label %s=%s: %s", where, k, v, msg)
		}
	}
	dup := func(exists bool) {
		if exists {
			t.Errorf("%s: a second %T named %q", where, obj, meta.GetName())
		}
	}
	name := meta.GetName()
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, ok := m.namespaces[name]
		dup(ok)
		m.namespaces[name] = o
	case *corev1.ConfigMap:
		_, ok := m.configMaps[name]
		dup(ok)
		m.configMaps[name] = o
	case *corev1.Secret:
		_, ok := m.secrets[name]
		dup(ok)
		m.secrets[name] = o
	case *corev1.Service:
		_, ok := m.services[name]
		dup(ok)
		m.services[name] = o
	case *appsv1.StatefulSet:
		_, ok := m.statefulSets[name]
		dup(ok)
		m.statefulSets[name] = o
	case *networkingv1.Ingress:
		_, ok := m.ingresses[name]
		dup(ok)
		m.ingresses[name] = o
	case *policyv1.PodDisruptionBudget:
		_, ok := m.pdbs[name]
		dup(ok)
		m.pdbs[name] = o
	default:
		t.Fatalf("%s: %T is not checked by this test: add its checks", where, obj)
	}
	m.objects = append(m.objects, obj)
}

// secretValue is key's value in a Secret of the manifests.
func (m *manifests) secretValue(name, key string) (string, bool) {
	s, ok := m.secrets[name]
	if !ok {
		return "", false
	}
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// walsearchPod is the one walsearch StatefulSet and its container.
func (m *manifests) walsearchPod(t *testing.T) (*appsv1.StatefulSet, *corev1.Container) {
	t.Helper()
	sts, ok := m.statefulSets["walsearch"]
	if !ok {
		t.Fatal("no StatefulSet walsearch")
	}
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "walsearch" {
			return sts, c
		}
	}
	t.Fatal("StatefulSet walsearch has no container walsearch")
	return nil, nil
}

// probePaths are the HTTP paths the walsearch container's probes request.
func probePaths(c *corev1.Container) map[string]string {
	out := map[string]string{}
	for what, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil {
			out[what] = p.HTTPGet.Path
		}
	}
	return out
}

// TestKubernetesManifests decodes every manifest strictly and checks that
// they fit together: one namespace, selectors that select the pod, ports,
// Secret and ConfigMap keys that exist, mounts of declared volumes, probes
// on the API's port, and a walsearch.yaml that walsearch itself accepts with
// the environment the pod gets, whose paths are the pod's mounts.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)

	if len(m.namespaces) != 1 {
		t.Fatalf("want one Namespace, got %d", len(m.namespaces))
	}
	var ns string
	for name := range m.namespaces {
		ns = name
	}
	if m.kust.Namespace != ns {
		t.Errorf("kustomization.yaml namespace %q, Namespace object %q", m.kust.Namespace, ns)
	}
	for _, obj := range m.objects {
		meta := obj.(metav1.Object)
		if _, isNS := obj.(*corev1.Namespace); !isNS && meta.GetNamespace() != ns {
			t.Errorf("%T %s: namespace %q, want %q", obj, meta.GetName(), meta.GetNamespace(), ns)
		}
	}

	sts, c := m.walsearchPod(t)
	pod := &sts.Spec.Template
	podLabels := labels.Set(pod.Labels)
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("StatefulSet %s: selector %v does not select its pods %v (%v)", sts.Name, sts.Spec.Selector, pod.Labels, err)
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet %s: want exactly 1 replica (one instance owns its slot and data_dir), got %v", sts.Name, sts.Spec.Replicas)
	}
	if sts.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
		t.Errorf("StatefulSet %s: terminationGracePeriodSeconds is not set", sts.Name)
	}

	// Container ports, by name and number.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOK := func(p intstr.IntOrString) bool {
		if p.Type == intstr.String {
			_, ok := ports[p.StrVal]
			return ok
		}
		return slices.Contains(slices.Collect(maps.Values(ports)), p.IntVal)
	}

	// Services select the pod and target its ports; the StatefulSet's
	// governing Service is headless.
	gov, ok := m.services[sts.Spec.ServiceName]
	if !ok {
		t.Errorf("StatefulSet %s: serviceName %q is not a Service of the manifests", sts.Name, sts.Spec.ServiceName)
	} else if gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s governs the StatefulSet: want clusterIP None, got %q", gov.Name, gov.Spec.ClusterIP)
	}
	for _, svc := range m.services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s: selector %v does not select the walsearch pod %v", svc.Name, svc.Spec.Selector, pod.Labels)
		}
		for _, p := range svc.Spec.Ports {
			if !portOK(p.TargetPort) {
				t.Errorf("Service %s port %s: targetPort %s is not a port of the walsearch container %v", svc.Name, p.Name, p.TargetPort.String(), ports)
			}
		}
	}

	// Ingress backends are Services and their ports.
	for _, ing := range m.ingresses {
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				t.Errorf("Ingress %s: rule for %s has no paths", ing.Name, rule.Host)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					t.Errorf("Ingress %s path %s: no service backend", ing.Name, p.Path)
					continue
				}
				svc, ok := m.services[b.Name]
				if !ok {
					t.Errorf("Ingress %s path %s: Service %q is not in the manifests", ing.Name, p.Path, b.Name)
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
					return b.Port.Name != "" && sp.Name == b.Port.Name || b.Port.Name == "" && sp.Port == b.Port.Number
				}) {
					t.Errorf("Ingress %s path %s: Service %s has no port %+v", ing.Name, p.Path, svc.Name, b.Port)
				}
			}
		}
		for _, tls := range ing.Spec.TLS {
			if _, ok := m.secrets[tls.SecretName]; !ok && !slices.Contains(externalSecrets, tls.SecretName) {
				t.Errorf("Ingress %s: TLS Secret %q is neither in the manifests nor one the user creates", ing.Name, tls.SecretName)
			}
		}
	}

	// PodDisruptionBudgets, if any, select the pod.
	for _, pdb := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s: selector does not select the walsearch pod (%v)", pdb.Name, err)
		}
	}

	// The environment: every Secret and ConfigMap key exists; the values
	// are what walsearch will see.
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			v, ok := m.secretValue(r.Name, r.Key)
			if !ok {
				t.Errorf("env %s: Secret %s has no key %s", e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			cm, ok := m.configMaps[r.Name]
			if !ok {
				t.Errorf("env %s: no ConfigMap %s", e.Name, r.Name)
				continue
			}
			v, ok := cm.Data[r.Key]
			if !ok {
				t.Errorf("env %s: ConfigMap %s has no key %s", e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("container walsearch: envFrom hides which variables it sets; list them in env")
	}

	// Volumes exist, and what they mount.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm, ok := m.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("volume %s: ConfigMap %s has no key %s", v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			if slices.Contains(externalSecrets, v.Secret.SecretName) {
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := m.secretValue(v.Secret.SecretName, it.Key); !ok {
					t.Errorf("volume %s: Secret %s (in the manifests) has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
			}
		}
	}
	claims := map[string]corev1.PersistentVolumeClaim{}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = pvc
		if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			t.Errorf("volumeClaimTemplate %s: no storage request", pvc.Name)
		}
	}
	mounts := map[string]corev1.VolumeMount{} // by mount path
	for _, vm := range c.VolumeMounts {
		_, isVol := volumes[vm.Name]
		_, isClaim := claims[vm.Name]
		if !isVol && !isClaim {
			t.Errorf("volumeMount %s: no volume or volumeClaimTemplate of that name", vm.Name)
		}
		if _, ok := mounts[vm.MountPath]; ok {
			t.Errorf("volumeMount %s: a second mount at %s", vm.Name, vm.MountPath)
		}
		mounts[vm.MountPath] = vm
	}
	// mountedFile says whether file is mounted from a volume item (or a
	// subPath of one), and which volume.
	mountedFile := func(file string) (string, bool) {
		if vm, ok := mounts[file]; ok && vm.SubPath != "" {
			return vm.Name, true
		}
		vm, ok := mounts[path.Dir(file)]
		if !ok {
			return "", false
		}
		v := volumes[vm.Name]
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		case v.Secret != nil:
			items = v.Secret.Items
		}
		return vm.Name, slices.ContainsFunc(items, func(it corev1.KeyToPath) bool { return it.Path == path.Base(file) })
	}

	// Probes: on the API's port, HTTP; the paths are requested from the
	// real binary in TestImage.
	for what, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("container walsearch: %s is missing or not an httpGet", what)
			continue
		}
		if !portOK(p.HTTPGet.Port) {
			t.Errorf("%s: port %s is not a container port %v", what, p.HTTPGet.Port.String(), ports)
		}
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/health" {
		t.Errorf("readinessProbe: want /health (200 while searches are answered), got %s", p.HTTPGet.Path)
	}
	if p := c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path == "/health" {
		t.Errorf("livenessProbe on /health would restart walsearch whenever Elasticsearch is unreachable")
	}

	// Resources: a request for what the scheduler must reserve, and a
	// memory limit above it.
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() || lim.Memory().Cmp(*req.Memory()) < 0 {
		t.Errorf("container walsearch: resources %+v: want cpu and memory requests and a memory limit at least the request", c.Resources)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod: want runAsNonRoot")
	}

	// The image is the one kustomization.yaml sets.
	img, _, _ := strings.Cut(c.Image, ":")
	var imageSet bool
	for _, i := range m.kust.Images {
		imageSet = imageSet || i.Name == img
	}
	if !imageSet {
		t.Errorf("container image %s: kustomization.yaml has no images entry for %s", c.Image, img)
	}

	// walsearch.yaml: accepted by walsearch with the pod's environment, and
	// consistent with the pod.
	cfgFile := configArg(c.Args)
	if cfgFile != configPath {
		t.Errorf("container args %v: want --config %s", c.Args, configPath)
	}
	vol, ok := mountedFile(cfgFile)
	if !ok || volumes[vol].ConfigMap == nil {
		t.Fatalf("%s is not mounted from a ConfigMap", cfgFile)
	}
	cm := m.configMaps[volumes[vol].ConfigMap.Name]
	body, ok := cm.Data[path.Base(cfgFile)]
	if !ok {
		t.Fatalf("ConfigMap %s: no key %s", cm.Name, path.Base(cfgFile))
	}
	cfg := loadConfig(t, "ConfigMap "+cm.Name, body, env)
	if vm, ok := mounts[cfg.DataDir]; !ok {
		t.Errorf("data_dir %s is not a mount", cfg.DataDir)
	} else if _, ok := claims[vm.Name]; !ok {
		t.Errorf("data_dir %s is mounted from %s, not from a volumeClaimTemplate: the bus would be lost with the pod", cfg.DataDir, vm.Name)
	}
	if port := listenPort(t, cfg.API.Listen); ports["http"] != int32(port) {
		t.Errorf("api.listen %s: the container port http is %d", cfg.API.Listen, ports["http"])
	}
	if cfg.Elasticsearch.CACert != "" {
		if vol, ok := mountedFile(cfg.Elasticsearch.CACert); !ok || volumes[vol].Secret == nil {
			t.Errorf("elasticsearch.ca_cert %s is not a file mounted from a Secret", cfg.Elasticsearch.CACert)
		}
	}
	if cfg.Elasticsearch.Password == "" && cfg.Elasticsearch.APIKey == "" {
		t.Errorf("no Elasticsearch credentials reach walsearch")
	}
	if len(cfg.API.Keys) == 0 {
		t.Errorf("no API keys reach walsearch")
	}
	for _, name := range externalSecrets {
		if !strings.Contains(readFile(t, "../docs/deploy.md"), name) {
			t.Errorf("docs/deploy.md does not tell how to create the Secret %s", name)
		}
	}
}

// TestKubernetesManifestsRefuseUnknownFields: the decoding above is strict
// (a check that cannot fail would prove nothing).
func TestKubernetesManifestsRefuseUnknownFields(t *testing.T) {
	doc := strings.Replace(readFile(t, filepath.Join(kubeDir, "statefulset.yaml")), "terminationGracePeriodSeconds:", "terminationGracePeriodSecond:", 1)
	var sts appsv1.StatefulSet
	if err := yaml.UnmarshalStrict([]byte(doc), &sts); err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSecond") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}
