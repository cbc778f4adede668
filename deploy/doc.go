// Package deploy holds what ships walsearch: the container image's default
// configuration (image/), a compose setup with PostgreSQL, Elasticsearch and
// NATS in three layouts (compose/), and Kubernetes manifests with a scale-out
// overlay and values for the NATS Helm chart (kubernetes/). The Dockerfile is at the
// repository's root. It has no code; its tests check these files without a
// Docker engine or a cluster: the manifests decode strictly into the
// Kubernetes API types and refer to each other correctly, the compose file
// loads with the Compose specification's own loader in every layout, every
// process's roles are ones walsearch takes, every embedded
// walsearch configuration passes walsearch's loader, and the Dockerfile's
// build command, run as written, stamps the version.
package deploy
