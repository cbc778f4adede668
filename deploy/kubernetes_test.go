package deploy

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/config"
)

const kubeDir = "kubernetes"

// kubeLayouts are the kustomizations a user applies: the base (sync in one
// process, the API apart), the scale-out overlay and the single-process
// overlay.
var kubeLayouts = []string{kubeDir, kubeScaleOut, kubeDir + "/single"}

const kubeScaleOut = kubeDir + "/scale-out"

// natsValuesFile holds the values for the official NATS Helm chart.
const natsValuesFile = kubeDir + "/nats/values.yaml"

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
	Patches []struct {
		Patch string `json:"patch"`
		Path  string `json:"path"`
	} `json:"patches"`
}

// object is a decoded manifest and where it came from.
type object struct {
	where string
	obj   runtime.Object
}

func (o object) meta() metav1.Object { return o.obj.(metav1.Object) }

// manifests is what `kubectl apply -k dir` applies, decoded.
type manifests struct {
	dir       string
	namespace string          // the kustomization's
	images    map[string]bool // image names the kustomizations set
	objects   []object
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func kubeScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return scheme
}

// loadManifests decodes what the kustomization in dir applies, strictly
// (an unknown or misspelt field, a wrong type or a malformed quantity
// fails): its files, the kustomizations it includes, and its patches, of
// which this test understands deletions only.
func loadManifests(t *testing.T, dir string) *manifests {
	t.Helper()
	m := &manifests{dir: dir, images: map[string]bool{}}
	m.load(t, kubeScheme(t), dir)
	seen := map[string]string{}
	for _, o := range m.objects {
		key := fmt.Sprintf("%T %s", o.obj, o.meta().GetName())
		if other, ok := seen[key]; ok {
			t.Errorf("%s and %s: both define %s", other, o.where, key)
		}
		seen[key] = o.where
	}
	return m
}

func (m *manifests) load(t *testing.T, scheme *runtime.Scheme, dir string) {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(dir, "kustomization.yaml"))), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.Kind != "Kustomization" || k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Errorf("%s/kustomization.yaml: kind %q apiVersion %q", dir, k.Kind, k.APIVersion)
	}
	if m.namespace == "" {
		m.namespace = k.Namespace
	} else if k.Namespace != m.namespace {
		t.Errorf("%s/kustomization.yaml: namespace %q, the overlay's is %q", dir, k.Namespace, m.namespace)
	}
	for _, i := range k.Images {
		m.images[i.Name] = true
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, listed []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			onDisk = append(onDisk, b)
		}
	}
	for _, r := range k.Resources {
		fi, err := os.Stat(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
		}
		if fi.IsDir() {
			m.load(t, scheme, filepath.Join(dir, r))
			continue
		}
		listed = append(listed, r)
		raw := readFile(t, filepath.Join(dir, r))
		for i, doc := range docSeparator.Split(raw, -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s/%s (document %d)", dir, r, i+1)
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
	for _, p := range k.Patches {
		if p.Path != "" {
			listed = append(listed, p.Path)
		}
	}
	if slices.Sort(listed); !slices.Equal(listed, onDisk) {
		t.Errorf("%s/kustomization.yaml lists %v; the folder holds %v: kubectl apply -k would miss or fail on the difference", dir, listed, onDisk)
	}
	for i, p := range k.Patches {
		if p.Path != "" {
			m.patchConfigMap(t, filepath.Join(dir, p.Path))
			continue
		}
		var del struct {
			Patch      string            `json:"$patch"`
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.UnmarshalStrict([]byte(p.Patch), &del); err != nil || del.Patch != "delete" {
			t.Fatalf("%s/kustomization.yaml patch %d: only `$patch: delete` patches are understood by this test (%v)", dir, i+1, err)
		}
		n := len(m.objects)
		m.objects = slices.DeleteFunc(m.objects, func(o object) bool {
			gvk := o.obj.GetObjectKind().GroupVersionKind()
			return gvk.Kind == del.Kind && gvk.GroupVersion().String() == del.APIVersion &&
				o.meta().GetName() == del.Metadata.Name && o.meta().GetNamespace() == del.Metadata.Namespace
		})
		if len(m.objects) != n-1 {
			t.Errorf("%s/kustomization.yaml patch %d deletes %s %s/%s: it matches %d objects, want 1", dir, i+1, del.Kind, del.Metadata.Namespace, del.Metadata.Name, n-len(m.objects))
		}
	}
}

// patchConfigMap applies the strategic-merge patch in file, which this test
// understands for a ConfigMap only: its data keys replace the patched
// ConfigMap's, its labels join them. A walsearch.yaml it replaces may differ
// from the one before only in nats.partitions (and comments): a layout
// that copied the whole file would otherwise drift from the base unseen.
func (m *manifests) patchConfigMap(t *testing.T, file string) {
	t.Helper()
	var patch corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(readFile(t, file)), &patch); err != nil {
		t.Fatalf("%s: only strategic-merge patches of a ConfigMap are understood by this test: %v", file, err)
	}
	if gvk := patch.GroupVersionKind(); gvk.Kind != "ConfigMap" || gvk.GroupVersion().String() != "v1" {
		t.Fatalf("%s: a patch of %s %s: only ConfigMap patches are understood by this test", file, patch.APIVersion, patch.Kind)
	}
	var target *corev1.ConfigMap
	for _, o := range m.objects {
		if cm, ok := o.obj.(*corev1.ConfigMap); ok && cm.Name == patch.Name && cm.Namespace == patch.Namespace {
			target = cm
		}
	}
	if target == nil {
		t.Fatalf("%s: patches ConfigMap %s/%s, which the layout does not hold", file, patch.Namespace, patch.Name)
	}
	if target.Labels == nil {
		target.Labels = map[string]string{}
	}
	maps.Copy(target.Labels, patch.Labels)
	for k, v := range patch.Data {
		if old, ok := target.Data[k]; ok && path.Ext(k) == ".yaml" {
			if a, b := withoutPartitions(old), withoutPartitions(v); a != b {
				t.Errorf("%s: %s differs from ConfigMap %s's in more than nats.partitions:\n%s\nwant\n%s", file, k, target.Name, b, a)
			}
		}
		target.Data[k] = v
	}
}

// withoutPartitions is a walsearch.yaml without its comments, blank lines
// and partitions: line.
func withoutPartitions(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(stripComments(doc)) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "partitions:") {
			b.WriteString(line)
		}
	}
	return b.String()
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
	switch obj.(type) {
	case *corev1.Namespace, *corev1.ConfigMap, *corev1.Secret, *corev1.Service, *appsv1.StatefulSet,
		*appsv1.Deployment, *networkingv1.Ingress, *policyv1.PodDisruptionBudget:
	default:
		t.Fatalf("%s: %T is not checked by this test: add its checks", where, obj)
	}
	m.objects = append(m.objects, object{where, obj})
}

// ofType is the manifests' objects of type T, by name.
func ofType[T runtime.Object](m *manifests) map[string]T {
	out := map[string]T{}
	for _, o := range m.objects {
		if v, ok := o.obj.(T); ok {
			out[o.meta().GetName()] = v
		}
	}
	return out
}

// secretValue is key's value in a Secret of the manifests.
func (m *manifests) secretValue(name, key string) (string, bool) {
	s, ok := ofType[*corev1.Secret](m)[name]
	if !ok {
		return "", false
	}
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// workload is a StatefulSet or a Deployment.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	pod        *corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
	// oneAtATime: a rollout never runs an old and a new pod together.
	oneAtATime  bool
	serviceName string
}

func (w workload) String() string { return w.kind + " " + w.name }

// container is the workload's walsearch container.
func (w workload) container(t *testing.T) *corev1.Container {
	t.Helper()
	for i := range w.pod.Spec.Containers {
		if c := &w.pod.Spec.Containers[i]; c.Name == "walsearch" {
			return c
		}
	}
	t.Fatalf("%s has no container walsearch", w)
	return nil
}

func (m *manifests) workloads() []workload {
	var out []workload
	for _, s := range ofType[*appsv1.StatefulSet](m) {
		out = append(out, workload{kind: "StatefulSet", name: s.Name, replicas: ptrOr(s.Spec.Replicas, 1), selector: s.Spec.Selector,
			pod: &s.Spec.Template, claims: s.Spec.VolumeClaimTemplates, oneAtATime: true, serviceName: s.Spec.ServiceName})
	}
	for _, d := range ofType[*appsv1.Deployment](m) {
		out = append(out, workload{kind: "Deployment", name: d.Name, replicas: ptrOr(d.Spec.Replicas, 1), selector: d.Spec.Selector,
			pod: &d.Spec.Template, oneAtATime: d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType})
	}
	slices.SortFunc(out, func(a, b workload) int { return strings.Compare(a.name, b.name) })
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// natsChart is what nats/values.yaml sets of the official NATS Helm
// chart's values, and the release docs/deploy.md installs.
type natsChart struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool `json:"enabled"`
				PVC     struct {
					Enabled bool   `json:"enabled"`
					Size    string `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool `json:"enabled"`
			} `json:"memoryStore"`
		} `json:"jetstream"`
	} `json:"config"`
	release, namespace string
}

// loadNATSChart reads nats/values.yaml and checks it asks for what
// walsearch needs: three servers in a cluster, JetStream on files that
// persist; and that docs/deploy.md installs the chart with it.
func loadNATSChart(t *testing.T) natsChart {
	t.Helper()
	raw := readFile(t, natsValuesFile)
	var v natsChart
	if err := yaml.UnmarshalStrict([]byte(raw), &v); err != nil {
		t.Fatalf("%s: %v", natsValuesFile, err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("%s: config.cluster: want enabled with 3 replicas, got %+v", natsValuesFile, c.Cluster)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "" || c.JetStream.MemoryStore.Enabled {
		t.Errorf("%s: config.jetstream: want enabled, on a file store with a PVC of a given size, no memory store; got %+v", natsValuesFile, c.JetStream)
	}
	install := regexp.MustCompile(`helm install (\S+) nats/nats --namespace (\S+) -f deploy/` + regexp.QuoteMeta(natsValuesFile))
	mv := install.FindStringSubmatch(raw)
	if mv == nil {
		t.Fatalf("%s: no `helm install <release> nats/nats --namespace <ns> -f deploy/%s` line", natsValuesFile, natsValuesFile)
	}
	if !strings.Contains(readFile(t, "../docs/deploy.md"), mv[0]) {
		t.Errorf("docs/deploy.md does not say %q", mv[0])
	}
	v.release, v.namespace = mv[1], mv[2]
	return v
}

// TestKubernetesManifests decodes what `kubectl apply -k` applies for each
// layout (the base and the scale-out and single overlays) strictly into
// the Kubernetes API types, and checks that it fits together: one
// namespace; workloads whose selectors select their own pods only; every
// stage run; one
// nats.partitions in every process; transform and sink by one process on
// one partition, by workers that share them on more (the scale-out
// overlay's, two or more, with a PodDisruptionBudget), each role in
// processes of one kind; each pod's walsearch.yaml accepted by walsearch's
// own loader with the pod's environment, its roles among those walsearch
// takes, its bus the NATS chart's Service, its credentials only those its
// roles need; Services, Ingress backends, probes and PodDisruptionBudgets
// that match pods and ports; Secret and ConfigMap keys that exist; mounts
// of declared volumes.
func TestKubernetesManifests(t *testing.T) {
	chart := loadNATSChart(t)
	for _, dir := range kubeLayouts {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			l := checkKubernetesLayout(t, loadManifests(t, dir), chart)
			switch dir {
			case kubeDir:
				// The base keeps the default: one partition, one sync
				// process.
				if l.partitions != 1 {
					t.Errorf("nats.partitions %d: the base layout runs one sync process, want the default 1", l.partitions)
				}
			case kubeScaleOut:
				// The scale-out layout runs the documents path as
				// workers that share the partitions.
				for _, r := range []string{roleTransform, roleSink} {
					if l.processes[r] < 2 {
						t.Errorf("%d processes run %s: want 2 or more sharing the partitions", l.processes[r], r)
					}
				}
			}
		})
	}
	for _, name := range externalSecrets {
		if !strings.Contains(readFile(t, "../docs/deploy.md"), name) {
			t.Errorf("docs/deploy.md does not tell how to create the Secret %s", name)
		}
	}
}

// kubeLayout is what checkKubernetesLayout found of a layout.
type kubeLayout struct {
	processes  map[string]int32 // role -> processes running it
	partitions int              // nats.partitions, the same in every process
}

func checkKubernetesLayout(t *testing.T, m *manifests, chart natsChart) kubeLayout {
	namespaces := ofType[*corev1.Namespace](m)
	if len(namespaces) != 1 {
		t.Fatalf("want one Namespace, got %d", len(namespaces))
	}
	ns := slices.Collect(maps.Keys(namespaces))[0]
	if m.namespace != ns {
		t.Errorf("kustomization.yaml namespace %q, Namespace object %q", m.namespace, ns)
	}
	for _, o := range m.objects {
		if _, isNS := o.obj.(*corev1.Namespace); !isNS && o.meta().GetNamespace() != ns {
			t.Errorf("%s: namespace %q, want %q", o.where, o.meta().GetNamespace(), ns)
		}
	}

	workloads := m.workloads()
	processes := map[string]int32{} // role -> processes running it
	podRoles := map[string]map[string]bool{}
	partitions := map[int][]string{}       // nats.partitions -> workloads
	documentKinds := map[string][]string{} // transform and sink roles of a process -> workloads
	for _, w := range workloads {
		roles, cfg := checkWorkload(t, m, w, workloads, chart)
		podRoles[w.name] = roles
		for r := range roles {
			processes[r] += w.replicas
		}
		p := max(1, cfg.NATS.Partitions)
		partitions[p] = append(partitions[p], w.String())
		if kind := documentKind(roles); kind != "" {
			documentKinds[kind] = append(documentKinds[kind], w.String())
		}
	}
	for _, r := range []string{roleCapture, roleTransform, roleSink, roleAPI} {
		if processes[r] == 0 {
			t.Errorf("nothing runs %s", r)
		}
	}
	// Every process of a layout uses one partition count: capture
	// publishes on the partitions' subjects, transform and sink read them,
	// the API waits for every partition's applied position; a process
	// with another count is refused at start.
	if len(partitions) != 1 {
		t.Errorf("nats.partitions differs between the processes of the layout: %v", partitions)
	}
	p := slices.Min(slices.Collect(maps.Keys(partitions)))
	checkDocumentProcesses(t, processes, documentKinds, p)

	// selected is the workloads whose pods sel selects.
	selected := func(sel labels.Selector) []workload {
		var out []workload
		for _, w := range workloads {
			if !sel.Empty() && sel.Matches(labels.Set(w.pod.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}

	// Services select pods and target their ports; a StatefulSet's
	// governing Service is headless and selects it.
	services := ofType[*corev1.Service](m)
	for _, svc := range services {
		ws := selected(labels.SelectorFromSet(svc.Spec.Selector))
		if len(ws) == 0 {
			t.Errorf("Service %s: selector %v selects no pod", svc.Name, svc.Spec.Selector)
		}
		if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s: no ports", svc.Name)
		}
		for _, w := range ws {
			c := w.container(t)
			for _, p := range svc.Spec.Ports {
				if !containerPort(c, p.TargetPort) {
					t.Errorf("Service %s port %s: targetPort %s is not a port of %s's container", svc.Name, p.Name, p.TargetPort.String(), w)
				}
			}
		}
	}
	for _, w := range workloads {
		if w.kind != "StatefulSet" {
			continue
		}
		gov, ok := services[w.serviceName]
		if !ok {
			t.Errorf("%s: serviceName %q is not a Service of the manifests", w, w.serviceName)
			continue
		}
		if gov.Spec.ClusterIP != corev1.ClusterIPNone || !slices.ContainsFunc(selected(labels.SelectorFromSet(gov.Spec.Selector)), func(o workload) bool { return o.name == w.name }) {
			t.Errorf("Service %s governs %s: want it headless (clusterIP None) and selecting its pods", gov.Name, w)
		}
	}

	// Ingress backends are Services and their ports, in front of the API.
	for _, ing := range ofType[*networkingv1.Ingress](m) {
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
				svc, ok := services[b.Name]
				if !ok {
					t.Errorf("Ingress %s path %s: Service %q is not in the manifests", ing.Name, p.Path, b.Name)
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
					return b.Port.Name != "" && sp.Name == b.Port.Name || b.Port.Name == "" && sp.Port == b.Port.Number
				}) {
					t.Errorf("Ingress %s path %s: Service %s has no port %+v", ing.Name, p.Path, svc.Name, b.Port)
				}
				for _, w := range selected(labels.SelectorFromSet(svc.Spec.Selector)) {
					if !podRoles[w.name][roleAPI] {
						t.Errorf("Ingress %s path %s: Service %s sends requests to %s, which runs no API", ing.Name, p.Path, svc.Name, w)
					}
				}
			}
		}
		for _, tls := range ing.Spec.TLS {
			if _, ok := ofType[*corev1.Secret](m)[tls.SecretName]; !ok && !slices.Contains(externalSecrets, tls.SecretName) {
				t.Errorf("Ingress %s: TLS Secret %q is neither in the manifests nor one the user creates", ing.Name, tls.SecretName)
			}
		}
	}

	// PodDisruptionBudgets select the pods of one workload of several
	// replicas, and let a drain evict one of them; the API has one.
	budgeted := map[string]bool{}
	for _, pdb := range ofType[*policyv1.PodDisruptionBudget](m) {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Errorf("PodDisruptionBudget %s: %v", pdb.Name, err)
			continue
		}
		ws := selected(sel)
		if len(ws) != 1 {
			t.Errorf("PodDisruptionBudget %s: selects the pods of %v, want one workload's", pdb.Name, ws)
			continue
		}
		w := ws[0]
		budgeted[w.name] = true
		allowed := int32(0)
		switch {
		case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.Type == intstr.Int:
			allowed = pdb.Spec.MaxUnavailable.IntVal
		case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
			allowed = w.replicas - pdb.Spec.MinAvailable.IntVal
		default:
			t.Errorf("PodDisruptionBudget %s: want an integer maxUnavailable or minAvailable", pdb.Name)
		}
		if w.replicas < 2 || allowed < 1 || allowed >= w.replicas {
			t.Errorf("PodDisruptionBudget %s: %s has %d replicas and the budget lets %d go: want at least one evictable and one left", pdb.Name, w, w.replicas, allowed)
		}
	}
	for _, w := range workloads {
		if podRoles[w.name][roleAPI] && !podRoles[w.name][roleAll] && !budgeted[w.name] {
			t.Errorf("%s runs the API on %d replicas without a PodDisruptionBudget", w, w.replicas)
		}
		if documentKind(podRoles[w.name]) != "" && w.replicas > 1 && !budgeted[w.name] {
			t.Errorf("%s runs %s on %d replicas without a PodDisruptionBudget: a drain could evict every one", w, documentKind(podRoles[w.name]), w.replicas)
		}
	}
	return kubeLayout{processes: processes, partitions: p}
}

// containerPort says whether p names or numbers a port of c.
func containerPort(c *corev1.Container, p intstr.IntOrString) bool {
	return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
		return p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal
	})
}

// checkWorkload checks one workload's pod and returns its roles and
// configuration.
func checkWorkload(t *testing.T, m *manifests, w workload, all []workload, chart natsChart) (map[string]bool, config.Config) {
	pod := w.pod
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("%s: selector %v does not select its pods %v (%v)", w, w.selector, pod.Labels, err)
	}
	for _, o := range all {
		if o.name != w.name && sel.Matches(labels.Set(o.pod.Labels)) {
			t.Errorf("%s: selector %v also selects the pods of %s", w, w.selector, o)
		}
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds < 20 {
		t.Errorf("%s: terminationGracePeriodSeconds %v: want 20 or more", w, pod.Spec.TerminationGracePeriodSeconds)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: want runAsNonRoot", w)
	}
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		if s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err != nil || !s.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%s: topologySpreadConstraints selector %v does not select its own pods", w, tsc.LabelSelector)
		}
	}
	c := w.container(t)
	img, _, _ := strings.Cut(c.Image, ":")
	if !m.images[img] {
		t.Errorf("%s: image %s: kustomization.yaml has no images entry for %s", w, c.Image, img)
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
				t.Errorf("%s: env %s: Secret %s has no key %s", w, e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			v, ok := ofType[*corev1.ConfigMap](m)[r.Name].Data[r.Key]
			if !ok {
				t.Errorf("%s: env %s: ConfigMap %s has no key %s", w, e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("%s: envFrom hides which variables it sets; list them in env", w)
	}
	roles := processRoles(t, w.String(), c.Args, env)
	roleList := slices.Sorted(maps.Keys(roles))

	// Volumes exist, and what they mount.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm, ok := ofType[*corev1.ConfigMap](m)[v.ConfigMap.Name]
			if !ok {
				t.Errorf("%s: volume %s: no ConfigMap %s", w, v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %s has no key %s", w, v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			if slices.Contains(externalSecrets, v.Secret.SecretName) {
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := m.secretValue(v.Secret.SecretName, it.Key); !ok {
					t.Errorf("%s: volume %s: Secret %s (in the manifests) has no key %s", w, v.Name, v.Secret.SecretName, it.Key)
				}
			}
		}
	}
	claims := map[string]corev1.PersistentVolumeClaim{}
	for _, pvc := range w.claims {
		claims[pvc.Name] = pvc
		if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			t.Errorf("%s: volumeClaimTemplate %s: no storage request", w, pvc.Name)
		}
	}
	mounts := map[string]corev1.VolumeMount{} // by mount path
	for _, vm := range c.VolumeMounts {
		_, isVol := volumes[vm.Name]
		_, isClaim := claims[vm.Name]
		if !isVol && !isClaim {
			t.Errorf("%s: volumeMount %s: no volume or volumeClaimTemplate of that name", w, vm.Name)
		}
		if _, ok := mounts[vm.MountPath]; ok {
			t.Errorf("%s: volumeMount %s: a second mount at %s", w, vm.Name, vm.MountPath)
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

	// walsearch.yaml: accepted by walsearch with the pod's environment.
	cfgFile := configArg(c.Args)
	if cfgFile != configPath {
		t.Errorf("%s: args %v: want --config %s", w, c.Args, configPath)
	}
	vol, ok := mountedFile(cfgFile)
	if !ok || volumes[vol].ConfigMap == nil {
		t.Fatalf("%s: %s is not mounted from a ConfigMap", w, cfgFile)
	}
	cm := ofType[*corev1.ConfigMap](m)[volumes[vol].ConfigMap.Name]
	body, ok := cm.Data[path.Base(cfgFile)]
	if !ok {
		t.Fatalf("ConfigMap %s: no key %s", cm.Name, path.Base(cfgFile))
	}
	cfg := loadConfig(t, fmt.Sprintf("%s with ConfigMap %s", w, cm.Name), body, env)
	vm, dataMounted := mounts[cfg.DataDir]
	if !dataMounted {
		t.Errorf("%s: data_dir %s is not a mount (the root filesystem is read-only)", w, cfg.DataDir)
	}

	// The bus: embedded (role all) in a StatefulSet of one pod whose
	// data_dir is a claim; otherwise the NATS chart's cluster.
	if roles[roleAll] {
		if _, ok := claims[vm.Name]; !ok || cfg.NATS.URL != "" || w.kind != "StatefulSet" || w.replicas != 1 {
			t.Errorf("%s: one process with its embedded bus needs a StatefulSet of 1 replica with data_dir on a volumeClaimTemplate", w)
		}
	} else {
		checkNATSURL(t, w, cfg, chart, m.namespace)
	}

	// Replicas by role: a capture leader and its standby; with one
	// partition one transform and one sink, never two at once (a second
	// would only stand by); the API on two pods or more.
	switch {
	case roles[roleCapture] && !roles[roleTransform] && !roles[roleSink] && w.kind == "Deployment" && w.replicas < 2:
		t.Errorf("%s runs capture alone on %d replica: want 2 (a leader and a standby)", w, w.replicas)
	case (roles[roleTransform] || roles[roleSink]) && max(1, cfg.NATS.Partitions) == 1 && (w.replicas != 1 || !w.oneAtATime):
		t.Errorf("%s runs %v on one partition: want 1 replica, and a StatefulSet or strategy Recreate so that a rollout never runs two", w, roleList)
	case roles[roleAPI] && !roles[roleAll] && w.replicas < 2:
		t.Errorf("%s runs the API on %d replica: want 2 or more", w, w.replicas)
	}

	// Credentials: only what the roles need.
	syncSide := roles[roleCapture] || roles[roleTransform] || roles[roleSink]
	if _, ok := env["PG_PASSWORD"]; ok != syncSide {
		t.Errorf("%s runs %v: PG_PASSWORD set %v; the sync roles need it, the API alone does not", w, roleList, ok)
	}
	if (roles[roleSink] || roles[roleAPI]) && cfg.Elasticsearch.Password == "" && cfg.Elasticsearch.APIKey == "" {
		t.Errorf("%s runs %v: no Elasticsearch credentials reach it", w, roleList)
	}
	if cfg.Elasticsearch.CACert != "" {
		if vol, ok := mountedFile(cfg.Elasticsearch.CACert); !ok || volumes[vol].Secret == nil {
			t.Errorf("%s: elasticsearch.ca_cert %s is not a file mounted from a Secret", w, cfg.Elasticsearch.CACert)
		}
	}

	// HTTP: every process serves on api.listen — the search API, or the
	// health and metrics endpoints of a process without the api role — and
	// is probed there.
	checkHTTPContainer(t, w, c, cfg, roles[roleAPI])

	// Resources: a request for what the scheduler must reserve, and a
	// memory limit above it.
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() || lim.Memory().Cmp(*req.Memory()) < 0 {
		t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit at least the request", w, c.Resources)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: want readOnlyRootFilesystem and no privilege escalation", w)
	}
	return roles, cfg
}

// checkNATSURL checks that a process on the NATS cluster connects to the
// chart's Service, with a replica per server up to 3.
func checkNATSURL(t *testing.T, w workload, cfg config.Config, chart natsChart, ns string) {
	t.Helper()
	if cfg.NATS.URL == "" {
		t.Errorf("%s: roles other than all need nats.url", w)
		return
	}
	if chart.namespace != ns {
		t.Errorf("the NATS chart is installed in %s, walsearch in %s", chart.namespace, ns)
	}
	hosts := []string{chart.release, chart.release + "." + ns, chart.release + "." + ns + ".svc", chart.release + "." + ns + ".svc.cluster.local"}
	for _, s := range strings.Split(cfg.NATS.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err != nil || u.Scheme != "nats" || !slices.Contains(hosts, u.Hostname()) || u.Port() != "4222" {
			t.Errorf("%s: nats.url %s: want the NATS chart's Service, nats://%s:4222", w, s, hosts[2])
		}
	}
	if want := min(3, chart.Config.Cluster.Replicas); cfg.NATS.Replicas != want {
		t.Errorf("%s: nats.replicas %d on a cluster of %d: want %d", w, cfg.NATS.Replicas, chart.Config.Cluster.Replicas, want)
	}
}

// checkHTTPContainer checks the port, probes and keys of a container
// serving on api.listen: the search API when api is true, else the health
// and metrics endpoints only. Each probe must request, on the port
// api.listen names, a path that walsearch's own server of that kind
// registers without a key.
func checkHTTPContainer(t *testing.T, w workload, c *corev1.Container, cfg config.Config, api bool) {
	t.Helper()
	port := int32(listenPort(t, cfg.API.Listen))
	if !containerPort(c, intstr.FromString("http")) || !containerPort(c, intstr.FromInt32(port)) {
		t.Errorf("%s: api.listen %s: want the container port http %d", w, cfg.API.Listen, port)
	}
	served := servedPaths(t, api)
	for what, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: %s is missing or not an httpGet", w, what)
			continue
		}
		if !containerPort(c, p.HTTPGet.Port) || probePort(c, p.HTTPGet.Port) != port {
			t.Errorf("%s: %s: port %s is not the container port of api.listen %s", w, what, p.HTTPGet.Port.String(), cfg.API.Listen)
		}
		if !served[p.HTTPGet.Path] {
			t.Errorf("%s: %s: GET %s is not a public route of the server this process runs (%v)", w, what, p.HTTPGet.Path, slices.Sorted(maps.Keys(served)))
		}
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/health" {
		t.Errorf("%s: readinessProbe: want /health (200 while the process does its work: searches answered, or the bus up), got %s", w, p.HTTPGet.Path)
	}
	if p := c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/health/live" {
		t.Errorf("%s: livenessProbe: want /health/live (200 while the process serves; /health would restart walsearch whenever Elasticsearch or the bus is unreachable), got %s", w, p.HTTPGet.Path)
	}
	if len(cfg.API.Keys) == 0 {
		t.Errorf("%s: no API keys reach it: /metrics (and the API) off loopback need them", w)
	}
}

// probePort is the number of the container port p names or numbers.
func probePort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// servedPaths are the GET paths walsearch's HTTP server answers without a
// key: the search API's, or, in a process without the api role, the
// probe server's (api.NewProbes), read from the servers' own routes.
func servedPaths(t *testing.T, withAPI bool) map[string]bool {
	t.Helper()
	cfg := api.DefaultConfig()
	var srv *api.Server
	var err error
	if withAPI {
		srv, err = api.New(cfg, nil, api.PipelineFuncs{}, nil)
	} else {
		srv, err = api.NewProbes(cfg, api.PipelineFuncs{}, api.Stages{}, []api.Component{{Name: "bus", Check: func(context.Context) error { return nil }}})
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range srv.Routes() {
		if p, ok := strings.CutPrefix(r, "GET "); ok && api.PublicPath(p) {
			out[p] = true
		}
	}
	return out
}

// kubeProbes are the HTTP paths the API pods' probes request, in every
// layout, and the shortest grace period any walsearch pod gets.
func kubeProbes(t *testing.T) (paths map[string]string, grace time.Duration) {
	t.Helper()
	paths = map[string]string{}
	grace = time.Hour
	for _, dir := range kubeLayouts {
		m := loadManifests(t, dir)
		for _, w := range m.workloads() {
			grace = min(grace, time.Duration(ptrOr(w.pod.Spec.TerminationGracePeriodSeconds, 30))*time.Second)
			c := w.container(t)
			for what, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
				if p != nil && p.HTTPGet != nil {
					paths[w.String()+" "+what] = p.HTTPGet.Path
				}
			}
		}
	}
	return paths, grace
}

// TestKubernetesManifestsRefuseUnknownFields: the decoding above is strict
// (a check that cannot fail would prove nothing).
func TestKubernetesManifestsRefuseUnknownFields(t *testing.T) {
	doc := strings.Replace(readFile(t, filepath.Join(kubeDir, "deployment-api.yaml")), "terminationGracePeriodSeconds:", "terminationGracePeriodSecond:", 1)
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(doc), &d); err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSecond") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}
