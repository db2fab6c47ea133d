#!/usr/bin/env bash
# Builds the kind node image crust/kind-node:latest (needs a Docker engine; UNTESTED, see
# the Dockerfile). Usage: deploy/kind/build.sh [KIND_NODE_IMAGE]
set -euo pipefail
cd "$(dirname "$0")/../.."
ctx=$(mktemp -d /tmp/crust-kind.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
deploy/build.sh "$ctx/bin"
cp deploy/kind/Dockerfile deploy/kind/config.toml deploy/crustd.service "$ctx/"
docker build ${1:+--build-arg KIND_NODE="$1"} -t crust/kind-node:latest "$ctx"
