#!/usr/bin/env bash
# Install test: what a user without a Rust toolchain gets from the published packages.
#
# Packs the main package and the linux-x64-gnu platform package (laid out by `napi create-npm-dirs`
# and filled with the binary `npm run build` made, as `napi artifacts` does in the release
# workflow), checks both tarballs against scripts/check-pack.mjs, installs them into an empty
# directory with cargo and rustc off PATH and onnxruntime-node's CUDA download skipped, then runs
# `npx xai-eval demo` and one metric from a small script there, and checks that the addon the
# process mapped is the platform package's, not a local build.
#
# Needs a prior `npm install` (or `npm run build`) in this checkout. Prints "install test: passed in
# N s" or "install test: FAILED: why" and exits 0/1. Keeps its temp directory when KEEP_TMP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

fail() {
  echo "install test: FAILED: $*"
  exit 1
}

platform=linux-x64-gnu
[ "$(node -p 'process.platform + "-" + process.arch')" = linux-x64 ] || fail "only linux-x64 hosts can run this test"
binary="native/xai-eval.$platform.node"
for f in "$binary" native/binding.cjs dist/index.js dist/cli.js; do
  [ -e "$f" ] || fail "$f is missing: run npm run build first"
done
version=$(node -p 'require("./package.json").version')
# onnxruntime-node is a peer dependency: installed next to xai-eval, at the version tested here.
ort=$(node -p 'require("onnxruntime-node/package.json").version')

tmp=$(mktemp -d /tmp/xai-eval-install.XXXXXX)
if [ "${KEEP_TMP:-0}" = 1 ]; then echo "install test: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
mkdir -p "$tmp/tarballs" "$tmp/app"

# 1. The tarballs, as `npm publish` would make them (scripts ignored: the build above is what ships).
npm pack --ignore-scripts --json --pack-destination "$tmp/tarballs" >"$tmp/main.json" 2>"$tmp/pack.log" || fail "npm pack: $(cat "$tmp/pack.log")"
# napi keeps the platform dirs inside the project: npm/ (git-ignored), as the release workflow does.
npx napi create-npm-dirs --npm-dir npm >"$tmp/dirs.log" 2>&1 || fail "napi create-npm-dirs: $(cat "$tmp/dirs.log")"
cp "$binary" LICENSE "npm/$platform/"
(cd "npm/$platform" && npm pack --json --pack-destination "$tmp/tarballs" >"$tmp/platform.json" 2>>"$tmp/pack.log") || fail "npm pack $platform: $(cat "$tmp/pack.log")"
node scripts/check-pack.mjs "$tmp/main.json" "$tmp/platform.json" || fail "tarball contents or size (above)"

# 2. A user's machine: no cargo, no rustc, no Rust environment; ORT's CUDA download skipped the way
#    the README tells users behind a firewall.
#    A PATH directory holding cargo/rustc/rustup is replaced by a copy made of links to everything
#    else in it (so node stays reachable even where it shares /usr/bin with a distro's rustc).
clean_path=""
IFS=: read -ra dirs <<<"$PATH"
i=0
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then
    i=$((i + 1))
    mkdir -p "$tmp/path$i"
    for f in "$d"/*; do
      case "${f##*/}" in cargo* | rustc* | rustup* | rustdoc* | rust-* | clippy-driver) ;; *) ln -s "$f" "$tmp/path$i/" ;; esac
    done
    d="$tmp/path$i"
  fi
  clean_path="${clean_path:+$clean_path:}$d"
done
user_env=(env -u CARGO_HOME -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR -u NAPI_RS_NATIVE_LIBRARY_PATH
  PATH="$clean_path" ONNXRUNTIME_NODE_INSTALL=skip npm_config_update_notifier=false)
"${user_env[@]}" bash -c '! command -v cargo && ! command -v rustc' >/dev/null || fail "cargo or rustc still on PATH"

cd "$tmp/app"
echo '{ "name": "app", "version": "1.0.0", "private": true, "type": "module" }' >package.json
"${user_env[@]}" npm install --no-audit --no-fund --prefer-offline \
  "$tmp/tarballs/xai-eval-$version.tgz" "$tmp/tarballs/xai-eval-$platform-$version.tgz" "onnxruntime-node@$ort" >"$tmp/install.log" 2>&1 ||
  fail "npm install: $(tail -20 "$tmp/install.log")"
[ -e "node_modules/xai-eval-$platform/xai-eval.$platform.node" ] || fail "the platform package did not install"
if ls node_modules/xai-eval/native/*.node >/dev/null 2>&1; then fail "the main package carries a .node file"; fi

# 3. The demo through the installed bin, then one metric from user code.
"${user_env[@]}" npx --no-install xai-eval demo >"$tmp/demo.log" 2>&1 || fail "xai-eval demo: $(tail -20 "$tmp/demo.log")"
if ! grep -q '^xai-eval demo:' "$tmp/demo.log" || ! grep -q 'model rows in' "$tmp/demo.log"; then
  fail "unexpected demo output: $(cat "$tmp/demo.log")"
fi

cat >metric.js <<'EOF'
import { readFileSync } from 'node:fs'
import { loadDemo, OnnxModel, SymmetricRelevanceGain } from 'xai-eval'

const demo = await loadDemo()
const model = await OnnxModel.load(demo.modelPath)
try {
  const [n, , h, w] = demo.shape
  const srg = await new SymmetricRelevanceGain({ featuresInStep: 8 }).evaluate(model, {
    x: demo.x, shape: demo.shape, y: demo.y, a: demo.attributions.occlusion, aShape: [n, 1, h, w],
  })
  const addon = readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).find((p) => /^xai-eval\.[^/]*\.node$/.test(p?.split('/').pop() ?? ''))
  console.log(JSON.stringify({ n: srg.scores.length, mean: srg.mean, addon }))
} finally {
  await model.close()
}
EOF
"${user_env[@]}" node metric.js >"$tmp/metric.log" 2>&1 || fail "metric script: $(tail -20 "$tmp/metric.log")"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop())
  const want = "/node_modules/xai-eval-" + process.argv[2] + "/xai-eval." + process.argv[2] + ".node"
  if (r.n !== 64 || !(r.mean > 0.3)) throw new Error("SRG of occlusion on the demo: " + JSON.stringify(r))
  if (!r.addon || !r.addon.endsWith(want)) throw new Error("loaded addon " + r.addon + ", expected …" + want)
  console.log("SRG(occlusion) mean " + r.mean.toFixed(3) + " over " + r.n + " samples; addon " + r.addon)
' "$tmp/metric.log" "$platform" || fail "metric result (above)"

echo "install test: passed in $(($(date +%s) - start)) s"
