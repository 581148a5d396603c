# Shared by the scripts in this directory. Source it; do not run it.

# Runbooks build for wasm32-wasip2; install the target if it is missing.
ensure_wasm_target() {
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: rustup is needed to install the wasm32-wasip2 target (https://rustup.rs)" >&2
        exit 2
    fi
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "installing the wasm32-wasip2 target (once)..." >&2
        rustup target add wasm32-wasip2
    fi
    # The test command checks formatting and lints too.
    for component in rustfmt clippy; do
        if ! rustup component list --installed | grep -q "^$component"; then
            echo "installing $component (once)..." >&2
            rustup component add "$component"
        fi
    done
}

# The real peers the tests drive (docs: tests/README or the test files):
# Chromium renders the HTML report and, driven by chromedriver, runs the
# console's browser test; Alertmanager sends real alerts to the
# incident trigger; Prometheus scrapes /metrics; the CNCF distribution
# registry (Debian's docker-registry) serves runbooks as OCI artifacts.
# Installed once from Debian.
ensure_peers() {
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
    command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing the test peers ${missing[*]} (once)..." >&2
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
            echo "error: could not install ${missing[*]} with apt-get (the report, console, trigger, metrics and registry tests use them); install them and rerun" >&2
            exit 2
        fi
    fi
}

# Builds the reference runbooks (and test fixtures) into target/runbooks.
build_runbooks() {
    (cd runbooks && cargo build --release --workspace --target wasm32-wasip2 --target-dir ../target/runbooks)
}

RUNBOOKS_DIR="target/runbooks/wasm32-wasip2/release"
