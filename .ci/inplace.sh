# shellcheck shell=bash
# The compiled build in place (issue 26), sourced by .ci/run and .ci/compiled: mypyc compiles the hot
# modules (gateway/build.py's HOT_MODULES, setup.py with GATEWAY_COMPILE=1) into a temporary folder,
# the extensions are then placed next to the sources (Python loads them first) and removed again when
# the calling script exits, passing or failing: the checkout is left as it was, no .so in gateway/.
# mypyc's shared library is a top-level module (`<hash>__mypyc`, as in a regular install): it goes
# into the virtualenv's site-packages, where the venv's `gateway` script finds it too, and only that
# file goes at the end (mypy's own `<hash>__mypyc` library sits there as well).
# Needs an active virtualenv with '.[test]' (mypy compiles) and setuptools>=77 (the build runs there).

inplace_dir="$(mktemp -d)"
inplace_site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
inplace_shared=()
inplace_compiler=""

inplace_cleanup() {
  if [ -n "$inplace_compiler" ]; then   # a compile still running (the script failed meanwhile)
    kill -- "-$inplace_compiler" 2>/dev/null || true
    wait "$inplace_compiler" 2>/dev/null || true
  fi
  find gateway -name '*.so' -delete
  local name
  for name in "${inplace_shared[@]}"; do rm -f "$inplace_site/$name"; done
  rm -rf "$inplace_dir"
}
trap inplace_cleanup EXIT
trap 'exit 130' INT    # the EXIT trap runs on these too
trap 'exit 143' TERM

# Compile in the background (its own process group, so a failure elsewhere can stop it), writing
# only under the temporary folder: the C sources, the objects, the extensions, the log.
inplace_start_compile() {
  GATEWAY_COMPILE=1 GATEWAY_C_DIR="$inplace_dir/c" setsid -w python setup.py --quiet build_ext \
    --build-lib "$inplace_dir/lib" --build-temp "$inplace_dir/temp" >"$inplace_dir/log" 2>&1 &
  inplace_compiler=$!
}

# Wait for the compile, place its extensions, and check that the venv's `gateway` runs them all.
inplace_place() {
  local pid="$inplace_compiler"
  inplace_compiler=""
  if ! wait "$pid"; then
    cat "$inplace_dir/log" >&2
    echo "the compiled build failed (log above)" >&2
    return 1
  fi
  cp -R "$inplace_dir/lib/gateway/." gateway/
  local lib
  for lib in "$inplace_dir"/lib/*.so; do
    inplace_shared+=("$(basename "$lib")")
    cp "$lib" "$inplace_site/"
  done
  local expected
  expected="gateway $(python -c 'import gateway; print(gateway.__version__)') (compiled: $(python -c 'from gateway.build import HOT_MODULES; print(len(HOT_MODULES))') modules)"
  [ "$(cd "$inplace_dir" && gateway --version)" = "$expected" ] || { echo "gateway --version: not $expected" >&2; return 1; }
}
